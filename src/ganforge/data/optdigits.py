"""UCI's optdigits, shipped inside the package: 1,797 handwritten digits from 43 writers, each an 8 x 8 grid of
counts (the inked pixels of every 4 x 4 block of a 32 x 32 scan, 0-16). Optical Recognition of Handwritten
Digits by E. Alpaydin and C. Kaynak, UCI Machine Learning Repository, CC BY 4.0; the copy the scikit-learn 1.9.1
wheel ships (built by tools/make_optdigits.py). The last 30 digits of each class are held out.

`optdigits` draws them as MNIST frames its digits: the counts scaled to 0-255, enlarged to 20 x 20 and centred in
28 x 28. What comes out is a second real style of handwritten digit, blocky and blurred where MNIST's are sharp,
for translating between the two (mnist5k-optdigits, data/derived.py).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import ImageData
from ganforge.data.mnist5k import DIGITS

SIZE, BOX = 28, 20  # MNIST's frame and the box its digits are fitted to (LeCun et al. 1998)


@lru_cache(maxsize=1)
def _arrays() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    with resources.files("ganforge.data").joinpath("assets/optdigits.npz").open("rb") as f:
        d = np.load(f)
        return d["counts"], d["labels"], d["held_out"]


def framed(counts: torch.Tensor) -> torch.Tensor:
    """uint8 counts (N, 8, 8) in 0-16 -> uint8 digits (N, 1, 28, 28): scaled, enlarged bilinearly to 20 x 20 and
    centred with a 4-pixel border."""
    x = counts.float().unsqueeze(1) * (255 / 16)
    x = F.interpolate(x, size=(BOX, BOX), mode="bilinear", align_corners=False)
    border = (SIZE - BOX) // 2
    x = F.pad(x, (border, border, border, border))
    return x.round().clamp(0, 255).to(torch.uint8)


def optdigits(split: str = "train") -> ImageData:
    """The 1,497 training digits ("train") or the 300 held out ("test"), 28-px MNIST frames, labelled."""
    counts, labels, held_out = _arrays()
    keep = {"train": ~held_out, "test": held_out}[split]
    return ImageData(name="optdigits" if split == "train" else "optdigits:test",
                     images=framed(torch.from_numpy(counts[keep])).contiguous(),
                     labels=torch.from_numpy(labels[keep]).long(), classes=list(DIGITS))
