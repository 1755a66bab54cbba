"""An .npz file as a dataset: ``images`` uint8 (N, H, W[, C]) and optionally ``labels`` (N,) integers.

C = 4 is straight-alpha RGBA: kept with ``alpha``, else composited on white; with ``alpha`` grey and RGB images
get an opaque alpha, so a run that keeps transparency always sees 4 channels."""
from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import torch

from ganforge.data.base import ImageData, resize, to_channels
from ganforge.errors import UserError


def load_npz(path: Path, alpha: bool = False) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as d:
            if "images" not in d:
                raise UserError(f"{path}: an .npz dataset needs an 'images' array (N, H, W[, C]) uint8; found {', '.join(d.files) or 'nothing'}")
            images, labels = d["images"], d["labels"] if "labels" in d else None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npz file ({e})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise UserError(f"{path}: 'images' must be uint8 (N, H, W) or (N, H, W, 1|3|4), got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise UserError(f"{path}: 'images' is empty")
    x = torch.from_numpy(images)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if alpha or x.shape[1] == 4:
        x = to_channels(x, 4 if alpha else 3)
    classes: List[str] = []
    y = None
    if labels is not None:
        if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise UserError(f"{path}: 'labels' must be non-negative integers, one per image")
        y = torch.from_numpy(labels.astype(np.int64))
        classes = [str(c) for c in range(int(labels.max()) + 1)]
    if x.shape[-1] != x.shape[-2]:
        x = resize(x.contiguous(), min(x.shape[-2:]))
    return ImageData(name=path.stem, images=x.contiguous(), labels=y, classes=classes)
