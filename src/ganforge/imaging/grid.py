"""Image grids: many samples in one picture."""
from __future__ import annotations

import math
from typing import Optional

import torch

from ganforge.imaging.transforms import to_uint8


def make_grid(images: torch.Tensor, nrow: Optional[int] = None, padding: int = 2, pad_value: int = 0) -> torch.Tensor:
    """(N, C, H, W) float [-1, 1] or uint8 -> one uint8 (C, H', W') image, nrow images per row. The padding
    is `pad_value` in every channel: with RGBA images (C = 4) the default 0 leaves it transparent."""
    x = images if images.dtype == torch.uint8 else to_uint8(images.detach().float().cpu())
    x = x.cpu()
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid


def save_grid(images: torch.Tensor, path, nrow: Optional[int] = None, scale: int = 1) -> None:
    """Write a grid as PNG (RGBA with transparent padding for 4-channel images); `scale` enlarges small images
    by pixel repetition so digits stay crisp."""
    from ganforge.imaging.io import write_png

    grid = make_grid(images, nrow)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    write_png(path, grid.permute(1, 2, 0).numpy())
