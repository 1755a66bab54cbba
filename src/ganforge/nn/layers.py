"""Small building blocks shared by the networks."""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn
from torch.nn.utils import parametrize
import torch.nn.functional as F

from ganforge.errors import UserError


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02), batch-norm scales from N(1, 0.02), biases zero (Radford 2015, section 4)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if parametrize.is_parametrized(m, "weight"):
                # m.weight is recomputed from the stored original on every read: initialise the original
                nn.init.normal_(m.parametrizations.weight.original, 0.0, 0.02)
                _settle_spectral_norm(m)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _settle_spectral_norm(m: nn.Module, iterations: int = 15) -> None:
    """Spectral norm's power-iteration vectors were fitted to the weight it was applied to: after that weight
    is re-initialised, refit them (each read of m.weight in training mode runs one iteration; 15 as torch
    runs when the parametrization is registered)."""
    modes = [p.training for p in m.parametrizations.weight]
    m.parametrizations.weight.train()
    for _ in range(iterations):
        m.weight
    for p, mode in zip(m.parametrizations.weight, modes):
        p.train(mode)


def pyramid(size: int) -> Tuple[int, int]:
    """Split an image size into (base, doublings) with base in 4..7: 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
    for base in (4, 5, 6, 7):
        doublings = math.log2(size / base)
        if doublings >= 1 and doublings == int(doublings):
            return base, int(doublings)
    raise UserError(f"image size {size} is not supported: use b * 2^n with b in 4..7 and n >= 1 (28, 32, 64, 128, ...)")


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(labels, n_classes).float()


def label_maps(labels: torch.Tensor, n_classes: int, size: int) -> torch.Tensor:
    """(B,) class indices -> (B, K, size, size) constant one-hot planes to join to an image's channels."""
    return one_hot(labels, n_classes)[:, :, None, None].expand(-1, -1, size, size)


def with_norm(layer: nn.Module, norm: str) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if norm == "spectral" else layer
