"""Fast quality figures for generated digits, measured with the built-in digit classifier.

- ``cfd``: the Fréchet distance between classifier features of the samples and of real digits, the
  FID recipe in a feature space made for digits (Heusel et al. 2017, with the classifier in place of
  Inception), cheap enough to track during training;
- ``accuracy``: how often a conditional model's sample is classified as the label it was asked for;
- ``score``: exp(E_x KL(p(y|x) || p(y))), the Inception Score (Salimans et al. 2016) over 10 classes:
  1 for a single class or unrecognisable samples, 10 for confident, evenly spread ones;
- ``histogram``, ``coverage_min``, ``coverage_max``: the share of each predicted digit, where mode
  collapse shows first (a healthy model keeps every digit within 5-15%).

Grey digits only: a 3-channel input is refused rather than converted, since a colour model's samples
are not digits the classifier has seen. Translations into colour are judged on a grey reading of their
digit (``grey_digits``, ``ink``), chosen by the model that knows what its outputs look like.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch
from torch.nn import functional as F

from ganforge.errors import UserError
from ganforge.features.digit_classifier import CLASSES, load_digit_classifier
from ganforge.imaging.transforms import match_channels
from ganforge.metrics.frechet import feature_stats, frechet_distance

MNIST5K = Path(__file__).resolve().parents[1] / "data" / "assets" / "mnist5k.npz"
SIZE = 28
BATCH = 64  # small enough that each layer's activations stay in the CPU's cache
REFERENCES = ("held_out", "train")

_reference_stats: Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]] = {}


def _prepare(images) -> torch.Tensor:
    """uint8 or float [-1, 1] digits, (N, H, W) or (N, 1, H, W) -> float (N, 1, 28, 28) in [-1, 1]."""
    x = torch.as_tensor(images)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise UserError(f"digit images must be (N, 1, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != 1:
        raise UserError(f"the digit metrics need grey digits (1 channel), got {x.shape[1]} channels")
    if x.shape[0] == 0:
        raise UserError("got no digit images to score")
    if x.dtype == torch.uint8:
        x = x.float().div_(127.5).sub_(1.0)
    elif x.is_floating_point():
        x = x.float().clamp(-1.0, 1.0)
    else:
        raise UserError(f"digit images must be uint8 or float in [-1, 1], got {x.dtype}")
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


@torch.inference_mode()
def _features_and_logits(images) -> Tuple[torch.Tensor, torch.Tensor]:
    """Classifier features (N, 128) and logits (N, 10), on the device the images are on."""
    x = _prepare(images)
    model = load_digit_classifier(x.device)
    outputs = [model.features_and_logits(chunk.contiguous(memory_format=torch.channels_last)) for chunk in x.split(BATCH)]
    return torch.cat([f for f, _ in outputs]), torch.cat([l for _, l in outputs])


def digit_features(images) -> np.ndarray:
    """The classifier's (N, 128) float32 features of uint8 or float [-1, 1] grey digits."""
    return _features_and_logits(images)[0].cpu().numpy()


def _reference(name: str, device: torch.device) -> Tuple[np.ndarray, np.ndarray]:
    """Feature mean and covariance of the real mnist5k digits of a split, once per process and device."""
    if name not in REFERENCES:
        raise UserError(f"unknown digit reference {name!r}: use one of {', '.join(REFERENCES)}")
    key = (name, str(device))
    if key not in _reference_stats:
        with np.load(MNIST5K) as data:
            images = data["images"][data["held_out"] == (name == "held_out")]
        _reference_stats[key] = feature_stats(digit_features(torch.from_numpy(images).to(device)))
    return _reference_stats[key]


def digit_metrics(images, labels=None, *, reference: str = "held_out") -> dict:
    """cFD, accuracy (with ``labels``), classifier score and class histogram of generated digits.

    ``images``: uint8 (N, H, W) or (N, 1, H, W), or float (N, 1, H, W) in [-1, 1]; resized to 28x28
    when they are another size. ``labels``: the (N,) classes a conditional model was asked for.
    ``reference``: the real digits the cFD compares against, the 1,000 ``held_out`` mnist5k digits
    (never trained on) or the 4,000 ``train`` ones.
    """
    features, logits = _features_and_logits(images)
    n = features.shape[0]
    if n < 2:
        raise UserError(f"the digit metrics need at least 2 images, got {n}")
    mu, sigma = feature_stats(features.cpu().numpy())
    result = {"n": n, "cfd": frechet_distance(mu, sigma, *_reference(reference, features.device))}

    predicted = logits.argmax(dim=1).cpu()
    if labels is not None:
        labels = torch.as_tensor(labels).reshape(-1).cpu()
        if labels.shape[0] != n:
            raise UserError(f"got {labels.shape[0]} labels for {n} images: give one label per image")
        result["accuracy"] = (predicted == labels).double().mean().item()

    # Inception Score: KL of each p(y|x) from the marginal p(y), in float64 so that confident
    # predictions (p(y|x) near 0 or 1) keep their contribution.
    log_p = F.log_softmax(logits.double(), dim=1).cpu()  # (N, 10)
    log_marginal = torch.logsumexp(log_p, dim=0) - np.log(n)  # (10,)
    kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)
    result["score"] = float(np.exp(kl.mean().item()))

    histogram = (torch.bincount(predicted, minlength=CLASSES).double() / n).tolist()
    result.update(histogram=histogram, coverage_min=min(histogram), coverage_max=max(histogram))
    return result


# --- coloured digits, read as the grey digits the classifier knows -------------------------------------------

def grey_digits(images: torch.Tensor) -> torch.Tensor:
    """Colour digits on textured backgrounds (mnist5k-colored's B) -> grey digits the classifier reads:
    (N, C, H, W) in [-1, 1] -> (N, 1, H, W) in [-1, 1], the luma stretched from its 70th percentile (the
    background) to its maximum (the ink)."""
    grey = (match_channels(images.float(), 1) + 1) / 2
    floor = grey.flatten(1).quantile(0.7, dim=1).view(-1, 1, 1, 1)
    top = grey.amax(dim=(1, 2, 3), keepdim=True)
    return ((grey - floor) / (top - floor).clamp_min(1e-3)).clamp(0, 1) * 2 - 1


def ink(images: torch.Tensor) -> torch.Tensor:
    """Digits in any ink over a plain background (N, C, H, W) in [-1, 1] -> grey digits (N, 1, H, W) in [-1, 1],
    white ink on black: each pixel's largest channel difference from the background (the image's median
    colour: most of a digit image is background), scaled so the strongest ink is white."""
    x = images.float()
    background = x.flatten(2).median(dim=2).values[:, :, None, None]  # (N, C, 1, 1)
    distance = (x - background).abs().amax(dim=1, keepdim=True)
    top = distance.amax(dim=(2, 3), keepdim=True).clamp_min(0.1)
    return (distance / top).clamp(0, 1) * 2 - 1
