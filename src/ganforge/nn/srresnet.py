"""SRGAN's networks (Ledig et al. 2017, figure 4): the SRResNet generator and its discriminator.

Generator: a 9x9 convolution and PReLU, B residual blocks (conv3-BN-PReLU-conv3-BN, plus the input) at the
low resolution, a long skip over all of them, then one sub-pixel convolution (Shi et al. 2016: a 3x3
convolution to 4x the channels and a pixel shuffle, which turns them into a 2x larger map) per factor of 2,
and a 9x9 convolution to the image. Work stays at the low resolution until the end, which makes it cheap.

Discriminator: 3x3 convolutions with LeakyReLU 0.2 and batch norm, alternating stride 1 and 2 while the
channels double from 64 to 512, then a 1024-unit dense layer and one score. Global average pooling before
the dense layers lets it take any image size (the paper's took 96 x 96 crops).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import UserError


def sr_steps(scale: int) -> int:
    """Number of x2 sub-pixel stages for a scale factor (2 or 4)."""
    if scale not in (2, 4):
        raise UserError(f"super-resolution scale must be 2 or 4, got {scale}")
    return int(math.log2(scale))


class SRResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """(B, in_channels, h, w) in [-1, 1] -> (B, out_channels, scale * h, scale * w) in [-1, 1]."""

    multiple = 1

    def __init__(self, in_channels: int, out_channels: int, scale: int = 4, width: int = 64, n_blocks: int = 16):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[SRResidualBlock(width) for _ in range(n_blocks)],
                                    nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        upsample = []
        for _ in range(sr_steps(scale)):
            upsample += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        # tanh: the high-resolution images are in [-1, 1] (section 3.2 scales them so)
        self.tail = nn.Sequential(*upsample, nn.Conv2d(width, out_channels, 9, 1, 4), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.blocks(h))


class SRDiscriminator(nn.Module):
    """(B, channels, H, W) -> (B,) raw scores. Stride-2 stages stop while the map is still at least 2 x 2."""

    def __init__(self, channels: int, size: int, width: int = 64):
        super().__init__()
        self.uses_batch_norm = True
        stages = max(1, min(4, int(math.log2(max(2, size))) - 1))  # 4 at 96 px (the paper), 3 at 28 px
        layers = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for i in range(stages):
            out = width * 2 ** i
            layers += [nn.Conv2d(ch, out, 3, 2 if i == 0 else 1, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            if i > 0:
                layers += [nn.Conv2d(out, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch, 16 * width), nn.LeakyReLU(0.2, inplace=True), nn.Linear(16 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))  # global average pool -> (B, ch)
        return self.head(h).squeeze(1)
