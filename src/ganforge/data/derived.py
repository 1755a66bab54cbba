"""Image-to-image tasks derived from mnist5k, deterministically, so every image-to-image model trains offline.

- ``mnist5k-edges`` (paired, for pix2pix): A = the digit's edge map (thresholded Sobel gradient), B = the digit.
- ``mnist5k-colored`` (unpaired, for CycleGAN): A = plain grey digits, B = colour digits on textured, coloured
  backgrounds, the idea of MNIST-M (Ganin et al. 2016) with procedural textures in place of photo patches.
  A and B come from disjoint halves of every class, so no pair exists.
- ``mnist5k-sr4`` (paired, for SRGAN): A = the digit at 7 x 7 (bicubic, antialiased: how SRGAN makes its
  inputs), B = the 28 x 28 digit.
- ``mnist5k-inpaint`` (paired): A = the digit with one rectangular hole (mid-grey) plus the hole's mask as a
  second channel (255 = missing), B = the complete digit.
- ``mnist5k-optdigits`` (unpaired, for CycleGAN): A = UCI's optdigits scans (8 x 8 counts enlarged to MNIST's
  frame, data/optdigits.py), B = the mnist5k digits: two real styles of handwriting, no synthetic recolouring.

Training sets come from the 4,000 training digits. Split "test" is built the same way from the 1,000
held-out digits, paired (for mnist5k-colored, B is the coloured version of the same digit) and labelled,
for the quality figures; mnist5k-optdigits' test split holds each source's held-out digits, unpaired, each side
with its own labels.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import PairedImageData
from ganforge.data.mnist5k import DIGITS, mnist5k
from ganforge.data.optdigits import optdigits
from ganforge.errors import UserError

_SEED = 20170330  # fixed: the derived sets are the same on every machine and every run

# Rec. 601 luma weights, to keep the coloured digits lighter than their backgrounds in grey (see colored)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _digits(split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    data = mnist5k("test" if split == "test" else "train")
    return data.images, data.labels  # uint8 (N, 1, 28, 28), int64 (N,), sorted by label


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8, rounded."""
    return (x * 255).round_().clamp_(0, 255).to(torch.uint8)


def edge_map(images: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """uint8 (N, 1, H, W) -> uint8 edge map (N, 1, H, W): 255 where the Sobel gradient magnitude of the
    [0, 1] image exceeds `threshold` (a full-contrast step gives 4), else 0: both sides of every stroke."""
    x = images.float() / 255
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    gradient = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
    return ((gradient.square().sum(dim=1, keepdim=True).sqrt() > threshold).to(torch.uint8) * 255)


def textures(n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """n procedural colour textures (n, 3, size, size) in [0, 1]: value noise over three octaves and a
    sinusoidal grating, mixed between two random dark colours, plus fine per-channel grain."""
    def octave(cells: int) -> torch.Tensor:
        grid = torch.from_numpy(rng.random((n, 1, cells, cells), dtype=np.float32))
        return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)

    noise = 0.5 * octave(3) + 0.3 * octave(6) + 0.2 * octave(12)
    lo, hi = noise.amin(dim=(2, 3), keepdim=True), noise.amax(dim=(2, 3), keepdim=True)
    noise = (noise - lo) / (hi - lo + 1e-6)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    angle = torch.from_numpy(rng.uniform(0, np.pi, (n, 1, 1, 1)).astype(np.float32))
    period = torch.from_numpy(rng.uniform(4, 12, (n, 1, 1, 1)).astype(np.float32))
    phase = torch.from_numpy(rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32))
    grating = 0.5 + 0.5 * torch.sin(2 * np.pi * (xx * torch.cos(angle) + yy * torch.sin(angle)) / period + phase)
    t = 0.6 * noise + 0.4 * grating  # (n, 1, size, size) in [0, 1]
    c1 = torch.from_numpy(rng.uniform(0.0, 0.45, (n, 3, 1, 1)).astype(np.float32))
    c2 = torch.from_numpy(rng.uniform(0.0, 0.45, (n, 3, 1, 1)).astype(np.float32))
    grain = torch.from_numpy(rng.normal(0, 0.04, (n, 3, size, size)).astype(np.float32))
    return (c1 * (1 - t) + c2 * t + grain).clamp_(0, 1)


def colorize(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """uint8 grey digits (N, 1, H, W) -> uint8 (N, 3, H, W): each digit in a random light colour over its
    own texture. Unlike MNIST-M's difference blend, a digit stays lighter than its background in grey, so
    the digit classifier can still read translated images (their luma) and judge a translation."""
    n, _, h, w = images.shape
    background = textures(n, h, rng) if h == w else textures(n, max(h, w), rng)[..., :h, :w]
    hue = rng.random((n, 3), dtype=np.float32)
    ink = 0.55 + 0.45 * hue / hue.max(axis=1, keepdims=True)  # every channel >= 0.55: luma >= 0.55
    ink = torch.from_numpy(ink.astype(np.float32)).view(n, 3, 1, 1)
    alpha = images.float() / 255
    return _to_uint8(background * (1 - alpha) + ink * alpha)


def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, H / factor, W / factor), bicubic with antialiasing."""
    h, w = images.shape[-2:]
    small = F.interpolate(images.float(), size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    return small.round_().clamp_(0, 255).to(torch.uint8)


def rectangle_masks(n: int, size: int, rng: np.random.Generator, low: float = 0.25, high: float = 0.5) -> torch.Tensor:
    """n masks (n, 1, size, size) bool, each one axis-aligned rectangle with sides in [low, high] * size."""
    sides = rng.integers(int(round(low * size)), int(round(high * size)) + 1, (n, 2))
    tops = (rng.random(n) * (size - sides[:, 0] + 1)).astype(np.int64)
    lefts = (rng.random(n) * (size - sides[:, 1] + 1)).astype(np.int64)
    ys, xs = np.arange(size)[None, :, None], np.arange(size)[None, None, :]
    inside = ((ys >= tops[:, None, None]) & (ys < (tops + sides[:, 0])[:, None, None])
              & (xs >= lefts[:, None, None]) & (xs < (lefts + sides[:, 1])[:, None, None]))
    return torch.from_numpy(inside).unsqueeze(1)


def hole_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) and bool masks (N, 1, H, W) -> uint8 (N, C + 1, H, W): the image with the hole
    mid-grey (0 in [-1, 1]) and the mask (255 = missing) as the last channel."""
    holed = torch.where(masks, torch.full_like(images, 128), images)
    return torch.cat([holed, masks.to(torch.uint8) * 255], dim=1)


# --- the tasks: split -> Task -----------------------------------------------------------------------

class Task(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor
    paired: bool
    labels: Optional[torch.Tensor]  # the digit of each A image (of each pair, when paired)
    labels_b: Optional[torch.Tensor] = None  # the digit of each B image, for an unpaired test split


def _edges(split: str):
    digits, labels = _digits(split)
    return Task(edge_map(digits), digits, True, labels)


def _colored(split: str):
    digits, labels = _digits(split)
    rng = np.random.default_rng(_SEED + (1 if split == "test" else 0))
    if split == "test":  # the coloured twin of every held-out digit: a reference for both directions
        return Task(digits, colorize(digits, rng), True, labels)
    half = torch.zeros(len(digits), dtype=torch.bool)
    for digit in range(10):  # the first half of each class is domain A, the second half becomes domain B
        index = torch.nonzero(labels == digit).flatten()
        half[index[: len(index) // 2]] = True
    return Task(digits[half], colorize(digits[~half], rng), False, None)


def _sr4(split: str):
    digits, labels = _digits(split)
    return Task(downsample(digits, 4), digits, True, labels)


def _inpaint(split: str):
    digits, labels = _digits(split)
    rng = np.random.default_rng(_SEED + (3 if split == "test" else 2))
    return Task(hole_input(digits, rectangle_masks(len(digits), digits.shape[-1], rng)), digits, True, labels)


def _optdigits(split: str):
    scans, mnist = optdigits(split), mnist5k("test" if split == "test" else "train")
    return Task(scans.images, mnist.images, False, scans.labels, mnist.labels)


# name -> split -> Task; the catalogue gives each its entry
DERIVED: Dict[str, Callable[[str], Task]] = {"mnist5k-edges": _edges, "mnist5k-colored": _colored, "mnist5k-sr4": _sr4,
                                             "mnist5k-inpaint": _inpaint, "mnist5k-optdigits": _optdigits}


@lru_cache(maxsize=8)
def _build(name: str, split: str):
    return DERIVED[name](split)


def load(name: str, split: str = "train") -> PairedImageData:
    """A derived task as two-domain data; split "train" (the 4,000 training digits) or "test" (the 1,000 held out)."""
    if name not in DERIVED:
        raise UserError(f"unknown derived dataset '{name}'; choose one of {', '.join(DERIVED)}")
    if split not in ("train", "test"):
        raise UserError(f"{name} has the splits train and test, not {split!r}")
    a, b, paired, labels, labels_b = _build(name, split)
    if split != "test":  # the models are unconditional; labels serve the quality figures
        labels = labels_b = None
    return PairedImageData(
        name=name if split == "train" else f"{name}:test",
        images=a.clone(),
        images_b=b.clone(),
        paired=paired,
        labels=None if labels is None else labels.clone(),
        labels_b=None if labels_b is None else labels_b.clone(),
        classes=list(DIGITS) if labels is not None else [],
        native_size=a.shape[-1],
    )
