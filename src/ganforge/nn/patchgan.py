"""The PatchGAN discriminator (Isola et al. 2017, section 3.2.2 and appendix 6.1.2).

It classifies every N x N patch of an image as real or fake and returns the map of scores, so it models
high frequencies only and leaves the low ones to the L1 (pix2pix) or cycle (CycleGAN) loss. With n_layers
stride-2 layers the patch is 16 (n=1), 34 (n=2), 70 (n=3, the paper's choice at 256 px) or 142 pixels;
`patch_layers(size)` keeps the patch to about a quarter of the image side for small images.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nn.unet import init_weights


def patch_layers(size: int) -> int:
    """Stride-2 layers for an image size: 3 (70 x 70 patches) from 128 px on, 2 at 64 px, 1 at 32 px and below."""
    return max(1, min(3, round(math.log2(max(1, size) / 16))))


def receptive_field(n_layers: int) -> int:
    """Side of the input patch one output score sees: 4x4 kernels, n_layers of stride 2, then two of stride 1."""
    field = 1
    for stride in [1, 1] + [2] * n_layers:  # walk back from the output
        field = (field - 1) * stride + 4
    return field


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> (B, 1, H', W') raw scores, one per overlapping patch.

    C64-C128-C256-C512 for n_layers = 3: 4x4 convolutions, LeakyReLU 0.2, no norm on the first layer;
    norm "batch" (pix2pix), "instance" (CycleGAN) or "none". Channels stop growing at 8 x width.
    """

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        self.uses_batch_norm = norm == "batch"

        def normed(ch: int):
            if norm == "batch":
                return [nn.BatchNorm2d(ch)]
            if norm == "instance":
                return [nn.InstanceNorm2d(ch, affine=False)]
            return []

        layers = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for i in range(1, n_layers + 1):
            out = width * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1  # the last hidden layer keeps the resolution (C512 at stride 1)
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=norm == "none"), *normed(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
