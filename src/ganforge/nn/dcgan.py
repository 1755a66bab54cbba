"""Convolutional generator and discriminator after DCGAN (Radford 2015), for any size b * 2^n.

The generator projects z to a b x b map and doubles the resolution n times with transposed convolutions;
the discriminator mirrors it with strided convolutions. Channel widths halve as resolution doubles, as in
the paper's 64x64 network (width 64 gives its 512-256-128-64).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
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
        if self._frozen_with_input_grad(x):  # a G step: only the gradient to x is wanted
            out = _FrozenScores.apply(x, self)
        else:
            out = self.head(self.features(x).flatten(1))
        return out if self.aux_classes else out.squeeze(1)

    def input_gradient(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """d(sum of the adversarial scores)/dx in closed form, differentiable in the weights (for gradient
        penalties); None where there is none: with batch norm, which couples the samples, or under autocast.

        Without batch norm the critic is piecewise linear in x: its input gradient is the head's weights
        taken back through each convolution's transpose, times each LeakyReLU's slope where its input fell. A
        penalty's backward then runs on ordinary convolution kernels instead of autograd's double backward
        (WGAN-GP's penalty: the same values to float rounding, in about half the time on the CPU).
        """
        if self.uses_batch_norm or autocast_on(x.device.type):
            return None
        if self.n_classes:
            x = torch.cat([x, label_maps(labels, self.n_classes, self.size)], dim=1)
        weights = self._weights()  # with their graphs; read once, as a forward pass does (spectral norm)
        _, trace = self._trace(x, [w.detach() for w in weights])
        head = weights[-1][:1]  # the adversarial score's row
        g = self._input_gradient(head.expand(x.shape[0], -1), trace, weights)
        return g[:, : x.shape[1] - self.n_classes]

    # the closed form, shared by input_gradient and the frozen forward

    def _convs(self) -> List[nn.Conv2d]:
        return [m for m in self.features if isinstance(m, nn.Conv2d)]

    def _weights(self) -> List[torch.Tensor]:
        """Each convolution's weight, then the head's, each read once (spectral norm computes it on reading)."""
        return [conv.weight for conv in self._convs()] + [self.head.weight]

    @torch.no_grad()
    def _trace(self, x: torch.Tensor, weights: List[torch.Tensor]) -> Tuple[torch.Tensor, list]:
        """The forward pass with the given weights -> (head output, [(conv input size, activation output,
        slope)] per layer): where each activation fell, all the input gradient depends on."""
        h, trace = x, []
        acts = [m for m in self.features if isinstance(m, nn.LeakyReLU)]  # one after each convolution
        for conv, act, w in zip(self._convs(), acts, weights):
            size = h.shape[2:]
            h = F.leaky_relu(F.conv2d(h, w, conv.bias, conv.stride, conv.padding), act.negative_slope)
            trace.append((size, h, act.negative_slope))
        return F.linear(h.flatten(1), weights[-1], self.head.bias), trace

    def _input_gradient(self, grad_features: torch.Tensor, trace: list, weights: List[torch.Tensor]) -> torch.Tensor:
        """d/dx of <grad_features, the flattened last activation>, back through every layer."""
        _, last, _ = trace[-1]
        g = grad_features.reshape(last.shape)
        for conv, w, (size, act, slope) in zip(reversed(self._convs()), reversed(weights[:-1]), reversed(trace)):
            g = torch.ops.aten.leaky_relu_backward(g, act, slope, True)  # times the slope where act fell, one pass
            g = conv_transpose_to(g, w, conv, size)
        return g

    def _frozen_with_input_grad(self, x: torch.Tensor) -> bool:
        return (torch.is_grad_enabled() and x.requires_grad and not self.uses_batch_norm
                and not autocast_on(x.device.type) and not any(p.requires_grad for p in self.parameters()))


class _FrozenScores(torch.autograd.Function):
    """D's scores with frozen weights, whose backward is the closed-form input gradient: in a G step it
    replaces autograd's convolution backward, which oneDNN runs slowly when the input has an image's few
    channels."""

    @staticmethod
    def forward(ctx, x, net):
        weights = net._weights()
        out, trace = net._trace(x, weights)
        ctx.net, ctx.weights, ctx.trace = net, weights, trace
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return ctx.net._input_gradient(grad_out @ ctx.weights[-1], ctx.trace, ctx.weights), None


def autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def conv_transpose_to(g: torch.Tensor, w: torch.Tensor, conv: nn.Conv2d, size) -> torch.Tensor:
    """The transpose of `conv` (weight w, no bias) applied to g, back to the spatial size of conv's input."""
    if conv.in_channels <= 4 and g.device.type == "cpu":
        # an image's few channels: oneDNN's transposed convolution is slow there; a matmul into columns and
        # col2im computes the same
        b, c, h, wd = g.shape
        cols = torch.matmul(w.reshape(c, -1).t(), g.reshape(b, c, h * wd))  # (B, C_in * kh * kw, h * w)
        return F.fold(cols, tuple(size), conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
    output_padding = [s - ((n - 1) * st - 2 * p + k) for s, n, st, p, k in zip(size, g.shape[2:], conv.stride, conv.padding, conv.kernel_size)]
    return F.conv_transpose2d(g, w, stride=conv.stride, padding=conv.padding, output_padding=output_padding)
