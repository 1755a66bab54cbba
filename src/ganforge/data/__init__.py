"""Where training data comes from: `load_dataset(spec)` turns a --data SPEC into an ImageData.

SPEC is an embedded dataset name (mnist5k, ...), a downloadable one (mnist, fashion-mnist, cifar10,
optionally with :test), an image folder (sub-folders = classes), a .zip of images, or an .npz holding
`images` uint8 (N, H, W[, C]) and optionally `labels`. For a model that `needs` two domains, a folder is
read in one of the two-domain layouts and public pix2pix / CycleGAN sets are known by name (data/paired.py).
For a model that needs attributes, a folder or file is read as attribute data (data/attributes.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from ganforge.data.base import ImageData, to_float, to_uint8
from ganforge.data.embedded import EMBEDDED
from ganforge.errors import UserError

__all__ = ["ImageData", "load_dataset", "list_datasets", "to_float", "to_uint8"]


def load_dataset(spec: str, *, size: Optional[int] = None, channels: Optional[int] = None,
                 needs: Optional[str] = None) -> ImageData:
    """The data a --data SPEC names, at `size` x `size` and `channels` when given; `needs` is the model's
    (images, labels, paired, unpaired, ...): "paired" and "unpaired" read folders as two domains."""
    spec = str(spec)
    two_domains = needs in ("paired", "unpaired")
    if spec in EMBEDDED:
        data = EMBEDDED[spec][0]()
        if data.images_b is not None:
            from ganforge.data.paired import conform_pair

            data.paired = data.paired and needs != "unpaired"  # an unpaired model draws the sides independently
            return conform_pair(data, size)
    elif _public_name(spec)[0] is not None:
        from ganforge.data.paired import load_public

        name, split = _public_name(spec)
        return load_public(name, split=split, needs=needs if two_domains else None, size=size)
    elif needs == "attributes" and Path(spec).expanduser().exists() and Path(spec).suffix.lower() != ".npz":
        from ganforge.data.attributes import load_attribute_data

        return load_attribute_data(Path(spec).expanduser(), size=size, channels=channels)
    elif two_domains and Path(spec).expanduser().is_dir():
        from ganforge.data.paired import load_two_domains

        return load_two_domains(Path(spec).expanduser(), needs, size=size)
    elif _remote_name(spec)[0] is not None:
        from ganforge.data.remote import load_remote

        name, split = _remote_name(spec)
        return load_remote(name, split=split, size=size, channels=channels)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise UserError(f"no dataset '{spec}': not a dataset name ({', '.join(_names())}) nor an existing path")
        if path.suffix.lower() == ".npz":
            data = load_npz(path)
        else:
            from ganforge.data.folder import load_images

            return load_images(path, size=size, channels=channels)
    return conform(data, size, channels)


def conform(data: ImageData, size: Optional[int], channels: Optional[int]) -> ImageData:
    """Resize/crop and convert channels of in-memory data when the model asks for another shape."""
    from ganforge.imaging.transforms import match_channels, resize_center_crop

    if channels is not None and channels != data.channels:
        data.images = match_channels(data.images, channels)
    if size is not None and size != data.size:
        data.images = resize_center_crop(data.images, size)
    return data


def load_npz(path: Path) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as d:
            if "images" not in d:
                raise UserError(f"{path}: an .npz dataset needs an 'images' array (N, H, W[, C]) uint8; found {', '.join(d.files) or 'nothing'}")
            images, labels = d["images"], d["labels"] if "labels" in d else None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npz file ({e})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise UserError(f"{path}: 'images' must be uint8 (N, H, W) or (N, H, W, 1|3), got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise UserError(f"{path}: 'images' is empty")
    x = torch.from_numpy(images)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    classes: List[str] = []
    y = None
    if labels is not None:
        if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise UserError(f"{path}: 'labels' must be non-negative integers, one per image")
        y = torch.from_numpy(labels.astype(np.int64))
        classes = [str(c) for c in range(int(labels.max()) + 1)]
    if x.shape[-1] != x.shape[-2]:
        from ganforge.imaging.transforms import resize_center_crop

        x = resize_center_crop(x.contiguous(), min(x.shape[-2:]))
    return ImageData(name=path.stem, images=x.contiguous(), labels=y, classes=classes)


def _remote_name(spec: str) -> Tuple[Optional[str], str]:
    name, _, split = spec.partition(":")
    try:
        from ganforge.data.remote import REMOTE_DATASETS
    except ImportError:
        return None, ""
    return (name, split or "train") if name in REMOTE_DATASETS else (None, "")


def _public_name(spec: str) -> Tuple[Optional[str], str]:
    from ganforge.data.paired import public_name

    return public_name(spec)


def _names() -> List[str]:
    try:
        from ganforge.data.remote import REMOTE_DATASETS
    except ImportError:
        REMOTE_DATASETS = {}
    from ganforge.data.paired import PUBLIC

    return list(EMBEDDED) + list(REMOTE_DATASETS) + list(PUBLIC)


def list_datasets() -> List[Tuple[str, str, str]]:
    """(name, kind, description) for `ganforge datasets`."""
    rows = [(name, "embedded", desc) for name, (_, desc) in EMBEDDED.items()]
    try:
        from ganforge.data.remote import REMOTE_DATASETS

        rows += [(name, "download", getattr(ds, "description", "")) for name, ds in REMOTE_DATASETS.items()]
    except ImportError:
        pass
    from ganforge.data.paired import PUBLIC

    rows += [(name, "download", ds.description) for name, ds in PUBLIC.items()]
    return rows
