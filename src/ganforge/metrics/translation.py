"""Quality figures of image-to-image models: what a model made of held-out inputs (its `translations`, named
sets of `Translated`, models/base.py), compared with what it should have made.

- ``psnr``: peak signal-to-noise ratio against the targets, over all of the set's pixels; ``l1``: their mean
  absolute difference;
- ``cfd``, ``acc``: the digit classifier's Fréchet distance to the held-out digits and the share of outputs
  read as their source's digit (metrics/digits.py), on a grey reading of the outputs; beside them, NAME_cfd_input
  and NAME_acc_input of the untouched inputs, read the same way: where the translation started;
- ``attributes``: the share of outputs whose changed attribute the attribute classifier reads as asked
  (NAME_acc), and whose every attribute it does (NAME_all) (StarGAN's test, section 4.5);
- ``fid``: the Fréchet Inception Distance of the outputs to the targets (NAME_fid) and, beside it, of the
  untouched inputs to the same targets (NAME_fid_input): a translation that works moves the first well below
  the second. Left out, with the training log's note, when the Inception weights are not installed.

Figures are named after their set (``psnr_bicubic``, ``a2b_cfd``; bare for the set named ""), the pixel
figures of every set first.
"""
from __future__ import annotations

from typing import Dict

import torch

from ganforge import losses
from ganforge.data.base import to_uint8
from ganforge.features.attribute_classifier import read_attributes
from ganforge.features.inception import load_inception
from ganforge.features.inception_weights import available
from ganforge.imaging.similarity import psnr
from ganforge.metrics.features import extract_features
from ganforge.metrics.frechet import fid_from_features
from ganforge.metrics.digits import digit_metrics, grey_digits, ink
from ganforge.models.base import Translated

FIGURES = ("psnr", "l1", "attributes", "cfd", "acc", "fid")


def set_psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2), over the whole set's pixels as one image."""
    return float(psnr(output.reshape(1, -1), target.reshape(1, -1), peak=2.0))


def translation_figures(made: Dict[str, Translated]) -> Dict[str, float]:
    """Every figure each set asks for, by name."""
    for name, t in made.items():
        unknown = [f for f in t.figures if f not in FIGURES]
        if unknown:
            raise ValueError(f"translation set '{name}' asks for unknown figures {unknown}; choose from {', '.join(FIGURES)}")
    figures: Dict[str, float] = {}
    for kind, measure in (("psnr", set_psnr), ("l1", lambda out, target: float(losses.l1(out, target)))):
        for name, t in made.items():
            if kind in t.figures:
                figures[f"{kind}_{name}" if name else kind] = measure(t.outputs, t.targets)
    for name, t in made.items():
        prefix = f"{name}_" if name else ""
        if "attributes" in t.figures:
            figures.update(attribute_figures(t, prefix))
        if "cfd" in t.figures or "acc" in t.figures:
            figures.update({k: v for k, v in digit_figures(t, prefix).items()
                            if k[len(prefix):].removesuffix("_input") in t.figures})
        if "fid" in t.figures and available():
            figures.update(fid_figures(t, prefix))
    return figures


def fid_figures(t: Translated, prefix: str = "") -> Dict[str, float]:
    """FID of the outputs, and of the inputs, to the targets (grey sets are seen as grey RGB, RGBA on white)."""
    network = load_inception()
    targets = extract_features(to_uint8(t.targets.float().cpu()), network)
    figures = {f"{prefix}fid": fid_from_features(extract_features(to_uint8(t.outputs.float().cpu()), network), targets)}
    if t.inputs is not None:
        inputs = extract_features(to_uint8(t.inputs.float().cpu()), network)
        figures[f"{prefix}fid_input"] = fid_from_features(inputs, targets)
    return figures


def digit_figures(t: Translated, prefix: str = "") -> Dict[str, float]:
    """cFD against the held-out digits and the share read as their source's digit, of the set's grey reading, and
    the same of its inputs (NAME_cfd_input, NAME_acc_input) when it has them; {} without labels, or for colour
    outputs read as "grey"."""
    if t.labels is None:
        return {}
    figures: Dict[str, float] = {}
    for images, suffix in ((t.outputs, ""), (t.inputs, "_input")):
        grey = None if images is None else _digit_reading(images, t.digit)
        if grey is not None:
            m = digit_metrics(grey.cpu(), t.labels.cpu())
            figures.update({f"{prefix}cfd{suffix}": float(m["cfd"]), f"{prefix}acc{suffix}": float(m["accuracy"])})
    return figures if f"{prefix}acc" in figures else {}


def _digit_reading(images: torch.Tensor, digit: str):
    """The grey digits the classifier reads in images (see Translated.digit); None where it reads none."""
    if digit == "ink":
        return ink(images)
    if digit == "luma" and images.shape[1] != 1:
        return grey_digits(images)
    return images if images.shape[1] == 1 else None


def attribute_figures(t: Translated, prefix: str = "") -> Dict[str, float]:
    """The share of outputs whose changed attribute reads as asked, and whose every attribute does."""
    read = read_attributes(t.outputs)[:, list(t.columns)]
    changed = t.changed.to(read.device)[:, None]
    asked = t.asked.to(read.device)
    return {f"{prefix}acc": float((read.gather(1, changed) == asked.gather(1, changed)).float().mean()),
            f"{prefix}all": float((read == asked).all(dim=1).float().mean())}
