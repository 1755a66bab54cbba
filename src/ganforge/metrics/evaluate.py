"""The standard sample-quality figures of a generator or of two image sets, by metric name (metrics/standard.py
lists them; metrics/registry.py registers them).

Every result carries N, the seed and the feature network's id: compare numbers only at equal N.
Against a data set, the real images are a fixed subset of N images (the same for every seed, so their cached
features are reused).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ganforge.data.base import ImageData
from ganforge.errors import UserError
from ganforge.features.inception_weights import NETWORK_ID
from ganforge.metrics.features import as_images
from ganforge.metrics.registry import METRICS, Real, Sample, Samples, check, measure, resolve, subset, uint8_at

DEFAULT_METRICS = ("fid", "kid", "pr")
DEFAULT_N = 1000  # the samples' Inception features take minutes on a CPU beyond this (real features are cached)
MAX_N = 100_000  # the images of a set are held in memory at once (twice the 50,000 of the usual FID)


def parse_metrics(spec, info: Optional[Dict] = None, conditional: bool = False) -> List[str]:
    """The names a --metrics value asks for; at least one."""
    names = resolve(spec, info, conditional)
    if not names:
        raise UserError("no metrics asked for; choose from " + ", ".join(METRICS))
    return names


def evaluate_images(images_a, images_b, metrics=DEFAULT_METRICS, seed: int = 0, n: Optional[int] = None,
                    labels_a=None, labels_b=None, classes: Sequence[str] = (), inception: Optional[str] = None,
                    progress: bool = False) -> Dict:
    """Metrics of image set ``images_a`` (generated) against ``images_b`` (real).

    Each set: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), or float (N, C, H, W) in [-1, 1]; numpy or
    torch. ``n`` keeps a fixed subset of n images of each set; set a is brought to set b's size when they
    differ. Returns metric -> number, plus ``n``, ``n_real``, ``seed`` and ``network``.
    """
    names = parse_metrics(metrics)
    a, b = as_images(images_a), as_images(images_b)
    pick_a, pick_b = subset(len(a), n), subset(len(b), n)
    if pick_a is not None:
        a, labels_a = a[pick_a], None if labels_a is None else np.asarray(labels_a)[pick_a]
    if pick_b is not None:
        b, labels_b = b[pick_b], None if labels_b is None else np.asarray(labels_b)[pick_b]
    b = uint8_at(b, b.shape[-2:])
    a = uint8_at(a, b.shape[-2:])
    real = ImageData(name="real", images=b, labels=None if labels_b is None else torch.as_tensor(np.asarray(labels_b)),
                     classes=list(classes))
    check(names, inception)
    samples = Samples(lambda count: (a, labels_a), len(a), seed, progress)
    return _figures(names, samples, Real(real, inception=inception, progress=progress))


def evaluate_samples(sample: Sample, real: Union[str, ImageData], metrics=DEFAULT_METRICS, n: int = DEFAULT_N,
                     seed: int = 0, inception: Optional[str] = None, progress: bool = False) -> Dict:
    """Metrics of n samples (``sample(n)`` -> images, labels; see registry.Samples) against a fixed subset of n
    images of ``real`` (a dataset spec or an ImageData, its subset the same for every seed)."""
    names = parse_metrics(metrics)
    check(names, inception)
    return _figures(names, Samples(sample, n, seed, progress), Real(real, n=n, inception=inception, progress=progress))


def _figures(names: Sequence[str], samples: Samples, real: Real) -> Dict:
    out = measure(names, samples, real)
    out.update({"n": samples.n, "n_real": len(real.images), "seed": samples.seed, "network": NETWORK_ID})
    return out
