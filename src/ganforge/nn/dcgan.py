"""Convolutional generator and discriminator after DCGAN (Radford 2015), for any size b * 2^n.

The generator projects z to a b x b map and doubles the resolution n times with transposed convolutions;
the discriminator mirrors it with strided convolutions. Channel widths halve as resolution doubles, as in
the paper's 64x64 network (width 64 gives its 512-256-128-64).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ganforge.nn.layers import dcgan_init, label_maps, one_hot, pyramid, with_norm


class DCGANGenerator(nn.Module):
    """z (B, z_dim) [+ label] -> (B, C, size, size) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int = 64, n_classes: int = 0):
        super().__init__()
        base, n = pyramid(size)
        self.n_classes, self.base = n_classes, base
        ch = width * 2 ** (n - 1)
        self.project = nn.Sequential(nn.Linear(z_dim + n_classes, ch * base * base, bias=False))
        self.project_norm = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        blocks = []
        for _ in range(n - 1):
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        blocks += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z, one_hot(labels, self.n_classes)], dim=1)
        x = self.project(z).view(z.shape[0], -1, self.base, self.base)
        return self.blocks(self.project_norm(x))


class DCGANDiscriminator(nn.Module):
    """(B, C, size, size) [+ label planes] -> (B, 1 + aux_classes) scores; squeezed to (B,) without aux.

    norm: "batch" (the paper: every layer but the first), "spectral" (Miyato 2018) or "none".
    n_classes > 0 joins one-hot label planes to the input (conditional D); aux_classes > 0 adds an
    auxiliary classifier head (ACGAN).
    """

    def __init__(self, channels: int, size: int, width: int = 64, norm: str = "batch", n_classes: int = 0, aux_classes: int = 0):
        super().__init__()
        base, n = pyramid(size)
        self.n_classes, self.aux_classes, self.size = n_classes, aux_classes, size
        self.uses_batch_norm = norm == "batch"
        layers, ch_in, ch = [], channels + n_classes, width
        for i in range(n):
            layers.append(with_norm(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=norm != "batch" or i == 0), norm))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch_in, ch = ch, ch * 2
        self.features = nn.Sequential(*layers)
        self.head = with_norm(nn.Linear(ch_in * base * base, 1 + aux_classes), norm)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.n_classes:
            x = torch.cat([x, label_maps(labels, self.n_classes, self.size)], dim=1)
        out = self.head(self.features(x).flatten(1))
        return out if self.aux_classes else out.squeeze(1)
