"""The in-memory dataset every model trains from, and fitting it to the model's size and channels.

Images are held as uint8 (N, C, H, W) at the model's size: small (5,000 MNIST digits are 4 MB), and
batches are made by indexing and converting on the device, never by per-sample PIL calls in the loop.
C is 1 (grey), 3 (RGB) or 4 (RGBA, straight alpha, when a run keeps transparency: `alpha=true`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ganforge.imaging.transforms import match_channels, resize_center_crop, to_float, to_uint8  # noqa: F401 (re-exported)


@dataclass
class ImageData:
    """A set of images, optionally labelled, optionally with a second domain.

    - unconditional: ``images`` only; class-conditional: ``labels`` and ``classes``;
    - paired (pix2pix): ``images`` is domain A, ``images_b`` the aligned B of the same index;
    - unpaired (CycleGAN): ``images`` and ``images_b`` of independent lengths;
    - attribute-labelled (StarGAN): ``attributes`` (N, K) in {0, 1} with ``attribute_names``, and
      ``attribute_groups`` of names of which at most one is set in an example.
    """

    name: str
    images: torch.Tensor  # (N, C, H, W) uint8, C in {1, 3, 4}
    labels: Optional[torch.Tensor] = None  # (N,) int64 class index
    classes: List[str] = field(default_factory=list)
    images_b: Optional[torch.Tensor] = None  # (M, C, H, W) uint8, the second domain
    labels_b: Optional[torch.Tensor] = None  # (M,) int64 class index of the second domain's images, when unpaired
    paired: bool = False
    attributes: Optional[torch.Tensor] = None  # (N, K) float {0, 1}
    attribute_names: List[str] = field(default_factory=list)
    attribute_groups: List[List[str]] = field(default_factory=list)  # mutually exclusive attributes (hair colours)
    native_size: Optional[int] = None  # the size samples are written at (28 for MNIST)
    skipped: int = 0  # unreadable files passed over while loading

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.native_size is None:
            self.native_size = self.images.shape[-1]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def info(self) -> Dict:
        """What a model needs to know about its data, saved with every checkpoint."""
        return {
            "name": self.name,
            "channels": self.channels,
            "size": self.size,
            "native_size": self.native_size,
            "classes": list(self.classes),
            "attribute_names": list(self.attribute_names),
            "attribute_groups": [list(group) for group in self.attribute_groups],
            "paired": self.paired,
            "two_domains": self.images_b is not None,
        }


class PairedImageData(ImageData):
    """ImageData whose second domain may differ from the first in channels and size (grey <-> colour, 7 -> 28 px)."""

    def info(self) -> Dict:
        info = super().info()
        if self.images_b is not None:
            info.update(channels_b=int(self.images_b.shape[1]), size_b=int(self.images_b.shape[-1]))
        return info


def conform(data: ImageData, size: Optional[int], channels: Optional[int]) -> ImageData:
    """Resize/crop and convert channels of in-memory data when the model asks for another shape."""
    if channels is not None and channels != data.channels:
        data.images = to_channels(data.images, channels)
    if size is not None and size != data.size:
        data.images = resize(data.images, size)
    return data


def on_white(rgba: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 4, H, W) straight alpha -> uint8 (N, 3, H, W) composited on white, rounded."""
    colour, alpha = rgba[:, :3].int(), rgba[:, 3:].int()
    return ((colour * alpha + 255 * (255 - alpha) + 127) // 255).to(torch.uint8)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, channels, H, W) for C and channels in {1, 3, 4}: grey <-> RGB as
    `match_channels`; to RGBA with an opaque alpha; from RGBA composited on white."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 4:
        return match_channels(on_white(images), channels)
    if channels == 4:
        opaque = torch.full_like(images[:, :1], 255)
        return torch.cat([match_channels(images, 3), opaque], dim=1)
    return match_channels(images, channels)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """`resize_center_crop`, with RGBA (4 channels) resampled premultiplied: the colour weighted by alpha is
    resized, then divided by the resized alpha, so transparent pixels lend no colour to the edges."""
    if images.shape[1] != 4 or min(images.shape[-2:]) == size:  # nothing resampled: only cropped
        return resize_center_crop(images, size)
    out = torch.empty(images.shape[0], 4, size, size, dtype=torch.uint8, device=images.device)
    chunk = max(1, 2**24 // (images.shape[-2] * images.shape[-1]))  # ~64 M floats at a time, as resize_center_crop
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk]
        alpha = part[:, 3:].float() / 255
        resized = resize_center_crop(torch.cat([part[:, :3].float() * alpha, alpha], dim=1), size)
        colour, alpha = resized[:, :3], resized[:, 3:].clamp(0, 1)
        colour = torch.where(alpha > 0, colour / alpha.clamp_min(1e-6), torch.zeros_like(colour))
        out[start : start + chunk] = torch.cat([colour, alpha * 255], dim=1).round_().clamp_(0, 255).to(torch.uint8)
    return out


def conform_pair(data: ImageData, size: Optional[int]) -> ImageData:
    """Resize both domains for a model working at `size` (A's side); B keeps its size ratio to A (x4 for SR)."""
    if size is None or size == data.size:
        return data
    ratio = data.images_b.shape[-1] / data.size
    data.images = resize_center_crop(data.images, size)
    data.images_b = resize_center_crop(data.images_b, max(1, round(size * ratio)))
    return data
