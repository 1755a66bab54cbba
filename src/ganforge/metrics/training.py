"""Quality figures during and at the end of training (`eval.metrics` in the run config).

The trainer hands over what it can make, never itself: for a family that samples from noise, a sample function
(n -> images, labels) scored by the registered metrics against the run's data; for an image-to-image family,
a function that translates held-out data (the model's `translations`), judged by metrics/translation.py.
"""
from __future__ import annotations

import copy
import logging
from typing import Callable, Dict, Optional

import torch

from ganforge.data.catalogue import held_out
from ganforge.data.base import ImageData
from ganforge.features.digit_classifier import is_digit_data
from ganforge.features.inception_weights import NETWORK_ID, available
from ganforge.metrics.registry import METRICS, Real, Sample, Samples, measure, resolve
from ganforge.metrics.translation import translation_figures
from ganforge.models.base import Translated


log = logging.getLogger("ganforge")
DIGIT_N, INCEPTION_N = 2500, 500  # eval.n 0: samples per evaluation on digits, and with the Inception metrics


def eval_n(n: int, info: Dict) -> int:
    """eval.n, with 0 resolved by the data: the classifier judging digits is cheap, the Inception network is not."""
    return n or (DIGIT_N if is_digit_data(info) else INCEPTION_N)


_told: set = set()


def _without_inception(names, spec: str):
    """`auto` leaves out FID and KID, with one note per process, when the Inception weights are not installed."""
    if spec != "auto" or available():
        return names
    kept = [name for name in names if not METRICS[name].inception]
    if len(kept) < len(names) and "inception" not in _told:
        _told.add("inception")
        log.warning("no FID/KID during training: the Inception network is not installed (pip install 'ganforge[metrics]')")
    return kept


def figures_of_samples(spec: str, sample: Sample, data: str, info: Dict, conditional: bool, n: int, seed: int,
                       size: Optional[int] = None) -> Dict:
    """The metrics `spec` names (auto: those that apply to the data `info` describes) of n samples, against n
    images of the data that `data` names (at `size`); {} when none apply. Each metric's figures are rounded as it
    asks; Inception-space ones bring N real, the seed and the network."""
    names = _without_inception(resolve(spec, info, conditional), spec)
    if not names:
        return {}
    n = eval_n(n, info)
    samples, real = Samples(sample, n, seed), Real(data, n=n, size=size)
    record: Dict = {"n": n}
    for name in names:
        decimals = METRICS[name].decimals
        record.update({key: _rounded(value, decimals) for key, value in measure([name], samples, real).items()})
    if any(METRICS[name].inception for name in names):
        record.update({"n_real": len(real.images), "seed": seed, "network": NETWORK_ID})
    return record


def _rounded(value, decimals: Optional[int]):
    if decimals is None:
        return value
    if isinstance(value, (list, tuple)):
        return [round(float(v), decimals) for v in value]
    return round(float(value), decimals)


def figures_of_translations(spec: str, translate: Callable[[ImageData], Dict[str, Translated]], data: str, size,
                            n: int) -> Dict:
    """The figures of `translate`'s outputs for up to n held-out examples of the data `data` names (at `size`),
    if it has any; {} with `spec` none."""
    if spec in ("", "none"):
        return {}
    test = _held_out(data, size)
    if test is None:
        return {}
    test = _subset(test, n)
    record = translation_figures(translate(test))
    return {"n": len(test), **{k: round(float(v), 4) for k, v in record.items()}} if record else {}


_held_out_cache: Dict = {}


def _held_out(spec: str, size):
    key = (spec, size)
    if key not in _held_out_cache:
        _held_out_cache.clear()  # one run's test set at a time
        _held_out_cache[key] = held_out(spec, size)
    return _held_out_cache[key]


def _subset(data: ImageData, n: int) -> ImageData:
    """n examples spread over every class (held-out sets are sorted by class), as a shallow copy."""
    if len(data) <= n:
        return data
    idx = torch.arange(n) * len(data) // n
    out = copy.copy(data)
    out.images = data.images[idx]
    out.labels = None if data.labels is None else data.labels[idx]
    if data.attributes is not None:
        out.attributes = data.attributes[idx]
    if data.images_b is not None:
        idx_b = idx if data.paired else torch.arange(n) * len(data.images_b) // n
        out.images_b = data.images_b[idx_b]
        out.labels_b = None if data.labels_b is None else data.labels_b[idx_b]
    return out


def run_figures(cfg, model, *, sample: Sample, translate: Callable[[ImageData], Dict[str, Translated]]) -> Dict:
    """A run's figures of `eval.metrics`, for the trainer: of its translations of held-out data if the model
    translates, else of its samples."""
    if model.translates:
        return figures_of_translations(cfg.eval.metrics, translate, str(cfg.data), cfg.size, cfg.eval.n or DIGIT_N)
    return figures_of_samples(cfg.eval.metrics, sample, cfg.data, model.info, model.conditional, cfg.eval.n, cfg.seed,
                              size=model.info.get("size"))
