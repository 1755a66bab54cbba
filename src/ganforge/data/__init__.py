"""Where training data comes from: `load_dataset(spec)` turns a --data SPEC into an ImageData.

SPEC is a name in the catalogue (data/catalogue.py; `ganforge datasets` lists them, NAME:test picks the test
split of a downloaded set) or a path: an image folder (sub-folders = classes), a .zip of images, or an .npz
holding `images` uint8 (N, H, W[, C]) and optionally `labels`. For a model that `needs` two domains, a folder is
read in one of the two-domain layouts (data/two_domains.py); for one that needs attributes, a folder or file is
read as attribute data (data/attributes.py).

Modules import downwards only: base -> folder, npz, download -> the sources (mnist5k, derived, attributes,
two_domains, public, remote, openmoji) -> catalogue -> this package.
"""
from __future__ import annotations

from ganforge.data.base import ImageData, PairedImageData, to_float, to_uint8
from ganforge.data.catalogue import (CATALOGUE, Dataset, Kind, Request, held_out, in_memory, list_datasets, load_dataset,
                                     register, unregister)

__all__ = ["CATALOGUE", "Dataset", "ImageData", "Kind", "PairedImageData", "Request", "held_out", "in_memory",
           "list_datasets", "load_dataset", "register", "to_float", "to_uint8", "unregister"]
