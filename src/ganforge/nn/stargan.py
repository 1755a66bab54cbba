"""StarGAN's networks (Choi et al. 2018, appendix, tables 4 and 5): a residual generator told the target
attributes, and a discriminator with two heads, D_src (real or fake) and D_cls (the attributes).

G(x, c) takes the image joined with the target attributes c (K values in {0, 1}) tiled into K constant planes,
through the residual network the paper adapts from CycleGAN (two stride-2 convolutions, residual blocks, two
transposed convolutions, instance norm; StarGenerator says where ours differs). D is a stack of stride-2
4 x 4 convolutions with LeakyReLU 0.01 and no normalisation.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ganforge.errors import UserError
from ganforge.nn.resnet import ResidualBlock
from ganforge.nn.unet import crop, init_weights, pad_to_multiple

Tensor = torch.Tensor


def d_layers(size: int) -> int:
    """D's stride-2 layers for an image size: the paper's six at 128 px leave a 2 x 2 map whose every score sees
    the whole image; one more or fewer per doubling keeps that (three at 28 px: a 3 x 3 map)."""
    return max(1, size.bit_length() - 2)


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are linear in the target attributes (Dumoulin et al. 2017)."""

    def __init__(self, channels: int, n_attributes: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Linear(n_attributes, channels)
        self.shift = nn.Linear(n_attributes, channels)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        """h (B, C, H, W), c (B, K) -> (B, C, H, W)."""
        return self.norm(h) * (1 + self.scale(c)[:, :, None, None]) + self.shift(c)[:, :, None, None]


class StarGenerator(nn.Module):
    """(images (B, C, H, W) in [-1, 1], target attributes (B, K)) -> (B, C, H, W) in [-1, 1] (table 4).

    c7s1-w, d2w, d4w (4 x 4, stride 2), n_blocks residual blocks of 4w, u2w, uw (4 x 4 transposed), c7s1-C, tanh,
    with instance norm; the input is the image joined with the target tiled into K constant planes. Two changes
    from the table, because instance norm subtracts whatever a constant plane adds:
    - no norm after the first convolution (the table has one): there it would leave the target only the image
      border, where the zero padding begins, to be read from (and nothing with reflection padding); G follows
      its targets more closely without it.
    - the two upsampling layers' norms take their scale and shift from the target (conditional instance norm).
      A change of the whole picture, such as inverting the background, needs the target to flip features'
      signs late in G, which G did not learn with the target at its input only.
    """

    multiple = 4  # two stride-2 layers

    def __init__(self, channels: int, n_attributes: int, width: int, n_blocks: int):
        super().__init__()

        def normed(layer: nn.Module, c: int) -> List[nn.Module]:
            return [layer, nn.InstanceNorm2d(c, affine=True), nn.ReLU(inplace=True)]

        layers = [nn.Conv2d(channels + n_attributes, width, 7, 1, 3), nn.ReLU(inplace=True)]
        layers += normed(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), 2 * width)
        layers += normed(nn.Conv2d(2 * width, 4 * width, 4, 2, 1, bias=False), 4 * width)
        layers += [ResidualBlock(4 * width) for _ in range(n_blocks)]
        self.encoder = nn.Sequential(*layers)
        self.up = nn.ModuleList([nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
                                 nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False)])
        self.up_norms = nn.ModuleList([ConditionalInstanceNorm(2 * width, n_attributes),
                                       ConditionalInstanceNorm(width, n_attributes)])
        self.to_image = nn.Sequential(nn.Conv2d(width, channels, 7, 1, 3, bias=False), nn.Tanh())
        init_weights(self)
        for norm in self.up_norms:  # start as plain instance norm: scale 1, shift 0, for every target
            for linear in (norm.scale, norm.shift):
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        x, box = pad_to_multiple(x, self.multiple, minimum=8)  # residual blocks reflect-pad a >= 2 x 2 map
        h = self.encoder(torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1))
        for up, norm in zip(self.up, self.up_norms):
            h = F.relu(norm(up(h), c))
        return crop(self.to_image(h), box)


class StarDiscriminator(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (D_src (B, 1, H', W') raw patch scores, D_cls (B, K) attribute logits).

    n_layers 4 x 4 stride-2 convolutions, widths doubling from `width` up to `max_width` (0: no cap), LeakyReLU 0.01, no normalisation (the
    gradient penalty is defined per example, which batch norm would break). D_src is a 3 x 3 convolution; D_cls
    a convolution as large as the training-size map, so one logit per attribute (larger inputs: their mean).
    """

    def __init__(self, channels: int, n_attributes: int, size: int, width: int, n_layers: int, max_width: int = 0):
        super().__init__()
        layers, c_in, side = [], channels, size
        for i in range(n_layers):
            c_out = min(width * 2 ** i, max_width) if max_width else width * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            c_in, side = c_out, side // 2
        if side < 1:
            raise UserError(f"stargan: {n_layers} stride-2 layers leave nothing of a {size}-px image; lower d_layers")
        self.trunk = nn.Sequential(*layers)
        self.src = nn.Conv2d(c_in, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(c_in, n_attributes, side, bias=False)
        init_weights(self)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.src(h), self.cls(h).mean(dim=(2, 3))
