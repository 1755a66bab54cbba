"""Batched image transforms on (N, C, H, W) tensors: one call per batch, never a per-sample PIL loop."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma, the weights Pillow's convert("L") uses.
_LUMA = (0.299, 0.587, 0.114)


def resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Scale the short side to ``size`` (antialiased bilinear), then centre-crop to size x size.

    ``images`` is uint8 or float (N, C, H, W); the result has the same dtype (uint8 rounded and clamped).
    The centre square of the short side is cut out first and then resized: the same picture as scaling
    first and cropping after (to the half pixel), without upscaling the discarded part of a 1 x 4000 strip.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    height, width = images.shape[-2:]
    if height == size and width == size:
        return images
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = images[:, :, top : top + side, left : left + side]
    if side == size:
        return square.contiguous()
    out = torch.empty(images.shape[0], images.shape[1], size, size, dtype=images.dtype, device=images.device)
    # Work in chunks of ~64 M float elements so a large uint8 set is never converted to float at once.
    chunk = max(1, 2**26 // max(1, images.shape[1] * side * side))
    for start in range(0, images.shape[0], chunk):
        part = square[start : start + chunk]
        work = part if part.dtype in (torch.float32, torch.float64) else part.float()
        resized = F.interpolate(work, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if images.dtype == torch.uint8:
            resized = resized.round_().clamp_(0, 255)
        out[start : start + chunk] = resized.to(images.dtype)
    return out


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey to RGB by repetition, RGB to grey by BT.601 luma."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
        luma = (images.float() * weights).sum(dim=1, keepdim=True)
        if images.dtype == torch.uint8:
            return luma.round_().clamp_(0, 255).to(torch.uint8)
        return luma.to(images.dtype)
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels (only 1 <-> 3)")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest as NVlabs' metric code does."""
    return (images * 127.5 + 128).clamp_(0, 255).to(torch.uint8)
