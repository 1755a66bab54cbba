"""Inpainting as pix2pix on masked inputs: fill a rectangular hole from the rest of the image.

G's input is the image with the hole set to mid-grey plus the mask as one more channel (1 = missing), so G
knows which pixels to invent and which to trust; its output replaces the hole only (the known pixels pass
through), and D judges (input, completed image) pairs as in pix2pix. The hole-filling setting follows
Pathak et al. 2016 (Context Encoders); losses and networks are pix2pix's (Isola et al. 2017).

Data: any images, with a new random rectangle per image and step (sides 25-50% of the image by default),
or pairs whose A side already carries a mask channel (mnist5k-inpaint).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.data.catalogue import Kind
from ganforge.models.base import Capability, Translated
from ganforge.models.registry import register
from ganforge.models.pix2pix import Pix2Pix, _as_batch, _batched

Tensor = torch.Tensor
HOLE_FILL = 128 / 127.5 - 1  # the grey a hole holds in the uint8 data (128), in [-1, 1]


def random_masks(n: int, size: int, low: float, high: float, device=None, generator=None) -> Tensor:
    """n masks (n, 1, size, size) bool: one rectangle each, sides uniform in [low, high] * size, anywhere."""
    lo, hi = max(1, round(low * size)), max(1, round(high * size))
    sides = torch.randint(lo, hi + 1, (n, 2, 1, 1), device=device, generator=generator)
    corner = (torch.rand(n, 2, 1, 1, device=device, generator=generator) * (size - sides + 1)).long()
    ys = torch.arange(size, device=device).view(1, size, 1)
    xs = torch.arange(size, device=device).view(1, 1, size)
    inside = (ys >= corner[:, 0]) & (ys < corner[:, 0] + sides[:, 0]) & (xs >= corner[:, 1]) & (xs < corner[:, 1] + sides[:, 1])
    return inside.unsqueeze(1)


def masked_input(images: Tensor, masks: Tensor) -> Tensor:
    """images (N, C, H, W) in [-1, 1] and bool masks (N, 1, H, W) -> G's input (N, C + 1, H, W): the hole
    mid-grey, the mask as the last channel (+1 missing, -1 known: 255 and 0 in the uint8 data)."""
    holed = torch.where(masks, torch.full_like(images, HOLE_FILL), images)
    return torch.cat([holed, masks.to(images.dtype) * 2 - 1], dim=1)


@register
class Inpaint(Pix2Pix):
    name = "inpaint"
    paper = "Isola et al. 2017 (pix2pix) on masked inputs, as in Pathak et al. 2016, Context Encoders"
    summary = "pix2pix filling random rectangular holes; the mask is an extra input channel"
    needs = Kind.IMAGES
    capabilities = Pix2Pix.capabilities | {Capability.MASK}
    defaults = {
        **Pix2Pix.defaults,
        "data": "mnist5k",
        "hole_min": 0.25,  # hole sides as a share of the image side: a quarter to a half
        "hole_max": 0.5,
    }
    paper_settings = Pix2Pix.paper_settings  # the networks and losses are pix2pix's

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if not 0 < cfg.hole_min <= cfg.hole_max <= 1:
            raise UserError(f"need 0 < hole_min <= hole_max <= 1, got {cfg.hole_min} and {cfg.hole_max}")
        if cfg.direction != "a2b":
            raise UserError("inpaint has one direction: drop direction=b2a")

    def check_pairs(self, info: Dict) -> None:
        self.given_masks = bool(info.get("two_domains"))
        if self.given_masks and self.channels != self.channels_b + 1:
            raise UserError(f"inpaint pairs need A = the holed image plus a mask channel and B = the image; '{info['name']}' "
                            f"has {self.channels} and {self.channels_b} channels")

    @property
    def image_channels(self) -> int:
        return self.channels_b if self.given_masks else self.channels

    def source_target_channels(self) -> Tuple[int, int]:
        return self.image_channels + 1, self.image_channels

    def input_channels(self, direction: str = "a2b") -> int:
        return self.image_channels

    def source_target(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        if self.given_masks:
            return batch["image"], batch["image_b"]
        y = batch["image"]
        masks = random_masks(y.shape[0], y.shape[-1], self.cfg.hole_min, self.cfg.hole_max, device=y.device)
        return masked_input(y, masks), y

    def fixed_pairs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """(input, target) with holes that are the same at every call and draw nothing from torch's RNG (grids, figures)."""
        if self.given_masks:
            return batch["image"], batch["image_b"]
        from ganforge.data.derived import rectangle_masks

        y = batch["image"]
        masks = rectangle_masks(y.shape[0], y.shape[-1], np.random.default_rng(0), self.cfg.hole_min, self.cfg.hole_max)
        return masked_input(y, masks.to(y.device)), y

    def generate(self, x: Tensor, nets=None) -> Tensor:
        """G's output in the hole, the input's pixels elsewhere."""
        hole = x[:, -1:] > 0
        return torch.where(hole, self.net("G", nets)(x), x[:, :-1])

    def preview(self, batch, nets=None):
        x, y = self.fixed_pairs(batch)
        out = self.generate(x, nets)
        rows = torch.stack([self.shown(x[:, :-1]), self.shown(out), self.shown(y)], dim=1)
        return rows.flatten(0, 1), 3 * 4  # holed input | completed | original, four triplets a row

    def translations(self, test, nets=None) -> Dict[str, Translated]:
        """The completed held-out images against the originals: the hole's pixels alone, and the whole image."""
        x, y = self.fixed_pairs(_as_batch(test, self.G))
        out = _batched(lambda part: self.generate(part, nets), x)
        hole = (x[:, -1:] > 0).expand_as(y)
        return {"hole": Translated(out[hole], ("psnr",), targets=y[hole]),
                "": Translated(out, ("l1", "cfd", "acc"), targets=y, labels=test.labels)}
