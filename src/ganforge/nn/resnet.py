"""The CycleGAN generator: Johnson et al. 2016's residual network (Zhu et al. 2017, appendix 7.2).

c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-C: a 7x7 convolution, two stride-2 downsamplings,
residual blocks at a quarter of the resolution, two transposed-convolution upsamplings and a 7x7
convolution to the output channels with tanh. Instance norm and reflection padding throughout (the paper's,
against border artefacts). n_blocks = 6 for 128-px training images, 9 for 256 px and above.
"""
from __future__ import annotations

import torch
from torch import nn

from ganforge.nn.unet import crop, init_weights, pad_to_multiple


def resnet_blocks(size: int) -> int:
    return 9 if size >= 256 else 6


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1):
    pad = kernel // 2
    if stride == 1:  # reflection padding keeps the borders free of zero-padding artefacts
        return [nn.ReflectionPad2d(pad), nn.Conv2d(c_in, c_out, kernel, 1, 0, bias=False),
                nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]
    return [nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False), nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """x + (pad, conv3, IN, ReLU, pad, conv3, IN)(x): two layers with the same number of filters."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; any H, W (padded to a multiple of 4)."""

    multiple = 4  # two stride-2 layers

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9):
        super().__init__()
        layers = _conv_block(in_channels, width, 7)
        layers += _conv_block(width, 2 * width, 3, stride=2) + _conv_block(2 * width, 4 * width, 3, stride=2)
        layers += [ResidualBlock(4 * width) for _ in range(n_blocks)]
        for c in (4 * width, 2 * width):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=False), nn.InstanceNorm2d(c // 2), nn.ReLU(inplace=True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, box = pad_to_multiple(x, self.multiple, minimum=8)  # residual blocks reflect-pad a >= 2 x 2 map
        return crop(self.model(x), box)
