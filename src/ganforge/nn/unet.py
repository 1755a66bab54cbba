"""The pix2pix generator: a U-Net encoder-decoder with skip connections (Isola et al. 2017, appendix 6.1.1).

Encoder C64-C128-C256-C512-C512-C512-C512-C512 (4x4 convolutions of stride 2, LeakyReLU 0.2, batch norm
except on the first layer), decoder mirroring it with transposed convolutions and ReLU, each decoder layer
joined to the encoder layer of the same resolution, dropout 0.5 in the three innermost decoder layers (the
generator's only noise). At 256 px the eight halvings reach a 1 x 1 bottleneck; for other sizes the depth
follows the image: ceil(log2(size)) halvings, at most eight.

Fully convolutional: any input size works. Inputs are padded (reflected) to a multiple of 2^depth and the
output is cropped back, so a 28-px digit runs at 32 px and a 1000 x 700 photo at 1024 x 768.
"""
from __future__ import annotations

import math
from typing import List

import torch
from torch import nn
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 1) -> tuple:
    """(N, C, H, W) -> (padded (N, C, H', W') with H', W' multiples of `multiple` and at least `minimum`,
    (top, left, H, W) to crop back).

    Centred reflection padding (no seam at the border); replication where the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = max((-h) % multiple, minimum - h), max((-w) % multiple, minimum - w)
    if not ph and not pw:
        return x, (0, 0, h, w)
    top, left = ph // 2, pw // 2
    pads = (left, pw - left, top, ph - top)
    mode = "reflect" if max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h else "replicate"
    return F.pad(x, pads, mode=mode), (top, left, h, w)


def crop(x: torch.Tensor, box: tuple) -> torch.Tensor:
    top, left, h, w = box
    return x[..., top : top + h, left : left + w]


def unet_depth(size: int) -> int:
    """Halvings for a training size: down to a 1 x 1 bottleneck (8 at 256 px, the paper's), 5 at 28 px."""
    return max(1, min(8, math.ceil(math.log2(max(2, size)))))


class UNetGenerator(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, size: int, width: int = 64, dropout: float = 0.5):
        super().__init__()
        self.depth = unet_depth(size)
        self.multiple = 2 ** self.depth
        ch = [width * min(2 ** i, 8) for i in range(self.depth)]  # 64, 128, 256, 512, 512, ...
        self.down = nn.ModuleList()
        for i in range(self.depth):
            layers: List[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            innermost = i == self.depth - 1
            layers.append(nn.Conv2d(in_channels if i == 0 else ch[i - 1], ch[i], 4, 2, 1, bias=i == 0 or innermost))
            if 0 < i and not innermost:  # no norm on the first layer (paper) nor on the 1 x 1 bottleneck
                layers.append(nn.BatchNorm2d(ch[i]))
            self.down.append(nn.Sequential(*layers))
        # up[j] undoes down[depth - 1 - j]; all but the outermost are followed by a skip join
        self.up = nn.ModuleList()
        for j, i in enumerate(reversed(range(self.depth))):
            c_in = ch[i] if j == 0 else 2 * ch[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[i - 1])]
            if j < 3 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, box = pad_to_multiple(x, self.multiple)
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck
        for up in self.up[:-1]:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return crop(self.up[-1](x), box)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """N(0, 0.02) weights, norm scales N(1, 0.02), zero biases: the pix2pix and CycleGAN initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
