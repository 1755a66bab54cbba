"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

Real and fake batches get the same kind of random transform and gradients flow through it to G, so D
cannot memorise a small data set without G learning the augmented distribution. Policy is a comma list of
"color", "translation", "cutout"; "" turns it off; "ada" is the adaptive pipeline of nn/ada.py instead.
Draws use torch's global RNG, which checkpoints save.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn
import torch.nn.functional as F

from ganforge.errors import UserError
from ganforge.nn.ada import AdaptiveAugment

POLICIES = ("color", "translation", "cutout")
ADA = "ada"
OFF = "none"  # no augmentation, as the empty policy: how a user turns off what a family's recipe turns on


def policy_ops(policy: str) -> List[str]:
    """The augmentations a policy names: 'color,translation' -> ['color', 'translation']; 'none' or '' -> []."""
    ops = [s.strip() for s in policy.split(",") if s.strip()]
    return [] if ops == [OFF] else ops


def _color(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device) - 0.5)  # brightness
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio * size pixels, filling with -1 (black in [-1, 1])."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(-1, h)  # (B, H, 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(-1, w)  # (B, 1, W)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    idx = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[idx, rows + 1, cols + 1].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank one random square of ratio * size per image (set to -1)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy + ch // 2).clamp(0, h) < ch) & ((ys - cy + ch // 2) >= 0)
    inside = inside & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, -1.0), x)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


class DiffAugment(nn.Module):
    adaptive = False  # p stays as set (ADA's moves: nn/ada.py)

    def __init__(self, policy: str = "", p: float = 1.0):
        super().__init__()
        self.ops = policy_ops(policy)
        for op in self.ops:
            if op not in _OPS:
                raise UserError(f"augment.policy: unknown augmentation '{op}'; choose from {', '.join(POLICIES)}, "
                                f"or {ADA} alone, or {OFF}")
        if not 0.0 <= p <= 1.0:
            raise UserError(f"augment.p must be in [0, 1], got {p}")
        self.p = p

    @property
    def active(self) -> bool:
        return bool(self.ops) and self.p > 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        out = x
        for op in self.ops:
            out = _OPS[op](out)
        if self.p < 1.0:  # augment a random subset of the batch
            keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p
            out = torch.where(keep, x, out)
        return out


def build_augment(settings, threshold: float = 0.0):
    """The augmentation a config's `augment` section asks for: DiffAugment's policies, or ADA ("ada"), whose
    p starts at augment.p (0 when unset) and adapts to D's outputs on reals about `threshold`."""
    settings = settings or {"policy": ""}
    ops = policy_ops(settings["policy"])
    p = settings.get("p")
    if ADA not in ops:
        return DiffAugment(settings["policy"], 1.0 if p is None else p)  # each image augmented unless p says otherwise
    if len(ops) > 1:
        raise UserError(f"augment.policy: {ADA} is a whole pipeline of its own; it does not combine with {', '.join(POLICIES)}")
    if p is not None and not 0.0 <= p <= 1.0:
        raise UserError(f"augment.p must be in [0, 1], got {p}")
    return AdaptiveAugment(0.0 if p is None else p, settings["target"], settings["interval"], settings["speed"], threshold)
