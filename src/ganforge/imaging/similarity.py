"""How alike two images are: PSNR, SSIM and a multi-scale SSIM, per image, on tensors (N, ...).

One home for the figures that projection, translation quality and the image operators' checks all report.
SSIM is Wang et al. 2004 (equation 13): an 11 x 11 Gaussian window of sigma 1.5, C1 = (0.01 L)^2 and
C2 = (0.03 L)^2 with L = 1, over each channel's valid window positions; it is differentiable, so projection
can also optimise it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


def psnr(a: Tensor, b: Tensor, peak: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per image of a and b (N, ...), whose values span `peak` (1 for [0, 1],
    2 for [-1, 1], 255 for bytes); inf where they are equal. Over a whole set: pass it as one image (1, -1)."""
    mse = (a.double() - b.double()).square().flatten(1).mean(1)
    return (10 * torch.log10(peak**2 / mse)).float()


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: Tensor, b: Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Mean SSIM per image of a and b (N, C, H, W) in [0, 1]; a window larger than the image shrinks to its
    short side (odd, so that it has a centre)."""
    size = min(window, *a.shape[-2:])
    size -= 1 - size % 2
    c = a.shape[1]
    kernel = _gaussian_window(size, sigma, c, a)
    blur = lambda x: F.conv2d(x, kernel, groups=c)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    m = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return m.flatten(1).mean(1)


def multiscale_ssim(a: Tensor, b: Tensor) -> Tensor:
    """SSIM per image averaged over scales 1, 1/2, 1/4, ... while a side still holds the full window: the
    multi-scale idea of Wang et al. 2003 with equal weights (the small images here have few scales)."""
    values = [ssim(a, b)]
    while min(a.shape[-2:]) // 2 >= SSIM_WINDOW:
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        values.append(ssim(a, b))
    return torch.stack(values).mean(0)
