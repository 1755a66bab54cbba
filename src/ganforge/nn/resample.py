"""The binomial low-pass after a stride-2 transposed convolution (StyleGAN2, Karras et al. 2020, appendix B).

A 4 x 4 transposed convolution of stride 2 gives the even and odd output pixels different taps of its kernel, so
even a constant input comes out as a period-2 pattern: the checkerboard of Odena et al. (2016). A binomial
filter after it has zeros at the Nyquist frequency and evens the taps out.

The filter is [1, 2, 1] in each direction rather than StyleGAN2's [1, 3, 3, 1]: StyleGAN2 follows a 3 x 3
kernel with it, ganforge's kernels are 4 x 4, and the 4-tap kernel with the 3-tap filter composes to the same 6
taps per axis, centred where the layer without the filter is (a 4-tap filter here would move the image by half
a pixel at every resolution).

It runs as one depthwise 3 x 3 convolution: on the CPU that beat the separable pair (3 x 1, then 1 x 3) and the
channels folded into the batch, and one transposed convolution with the composed 6 x 6 kernel took longer than
the 4 x 4 one with the filter after it. The filter is a non-persistent buffer: it follows the
network's device and dtype, and checkpoints hold the same keys with or without it.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class Blur(nn.Module):
    """x (N, C, H, W) -> the same size, each channel filtered by [1, 2, 1] x [1, 2, 1] scaled to sum to `gain`,
    zero-padded: away from the borders a constant c comes out as gain * c.

    After a 4 x 4 transposed convolution of stride 2, gain 4 gives the layer the DC gain of the same kernel at
    stride 1 (each output pixel's four taps average a quarter of the kernel): StyleGAN2's FIR gain of 4.
    """

    def __init__(self, gain: float = 1.0):
        super().__init__()
        row = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (torch.outer(row, row) * (gain / 16))[None, None], persistent=False)  # (1, 1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, -1, -1, -1), padding=1, groups=c)
