"""StyleGAN's networks (Karras et al. 2019) with StyleGAN2's revisions (Karras et al. 2020), in plain torch.

Generator = mapping network f: z -> w (an MLP at a hundredth of the learning rate) + synthesis network g:
a learned 4 x 4 constant, then per resolution an upsampling convolution and a 3 x 3 convolution, each
modulated by its own style s = A(w) and followed by per-pixel noise B with a learned strength. Styles are
applied by StyleGAN2's weight (de)modulation (section 2.2), which replaces AdaIN and its droplet
artefacts; the image is the sum of the upsampled toRGB outputs of every resolution (StyleGAN2's "skip"
generator, section 4.1).

Discriminator = StyleGAN2's residual network (section 4.1) with the minibatch standard deviation layer
(Karras 2018, section 3) before its last convolution.

Every stride-2 transposed convolution of G is followed by a binomial low-pass (StyleGAN2 appendix B;
ganforge/nn/resample.py), without which even a constant comes out of it as a period-2 checkerboard (Odena et
al. 2016); `fir=False` builds G without them, as runs saved before they existed were trained. D keeps its 2 x 2
average pooling and its unfiltered stride-2 fromRGB: StyleGAN2's low-pass there made the samples of short
mnist5k runs worse.

The full resolution has no convolution of its own: G reaches it with a modulated 4 x 4 transposed toRGB
from half resolution, D leaves it with a 4 x 4 stride-2 fromRGB, as DCGAN's outer layers do. On a CPU the
full-resolution stage of the paper's layout took three quarters of a training step at 32 px, while a digit
needs no more than these single layers there.

No progressive growing: StyleGAN2 showed the skip generator and residual discriminator reach its quality
without it (section 4.1), and one fixed network keeps the trainer, checkpoints and resume unchanged.

Every weight is stored N(0, 1) and scaled at run time by its He constant (equalized learning rate,
Karras 2018 section 4.1), so Adam's per-parameter steps are alike across layers.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ganforge.errors import UserError
from ganforge.nn import resample
from ganforge.nn.unet import pad_to_multiple

LEVELS = ("coarse", "middle", "fine")
ACT_GAIN = math.sqrt(2.0)  # keeps the activations' magnitude through leaky ReLU (StyleGAN2's def_gain)


def network_size(size: int) -> int:
    """The power of two (at least 8) the networks run at for images of `size`: 32 for 28-px digits.

    G's image is cropped to `size` and D's input padded back: resizing instead (28 -> 32 -> 28) blurs
    small digits far from the real ones."""
    return max(8, 2 ** math.ceil(math.log2(size)))


def resolutions(net_size: int) -> List[int]:
    """4, 8, ..., net_size (a power of two)."""
    return [2 ** i for i in range(2, int(math.log2(net_size)) + 1)]


def level_of(resolution: int, size: int) -> str:
    """The paper's style levels (section 3.1): coarse 4-8 px, middle 16-32 px, fine 64 px and up; the
    network's last resolution is always fine, so small images have all three where they can."""
    if resolution >= 64 or resolution == size:
        return "fine"
    return "coarse" if resolution <= 8 else "middle"


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * ACT_GAIN


def upsample(x: torch.Tensor) -> torch.Tensor:
    """x2 bilinear: the [1, 3, 3, 1] FIR upsampling of StyleGAN2 (borders replicated instead of zero)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def downsample(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


class EqualLinear(nn.Module):
    """A fully connected layer with equalized learning rate; lr_mul scales its effective learning rate."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain, self.lr_mul, self.activate = lr_mul / math.sqrt(in_features), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """A k x k convolution with equalized learning rate; stride 2 with k = 4 halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True, activate: bool = True, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain, self.activate, self.stride = 1 / math.sqrt(in_channels * kernel * kernel), activate, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride, padding=(self.weight.shape[-1] - 1) // 2)
        return lrelu(x) if self.activate else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, fir: Optional[nn.Module] = None) -> torch.Tensor:
    """StyleGAN2's modulated convolution (eq. 1-3) of x (N, I, H, W) by weight (O, I, k, k) and styles (N, I).

    w'_ijk = s_i w_ijk, then with demodulation w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps). Computed as
    scaling the input by s, one convolution shared by the batch, and scaling the output by the per-sample
    demodulation factor: the same result as a grouped convolution with per-sample weights, and faster on
    a CPU, where one dense convolution beats N small ones.

    up: a transposed convolution of stride 2 with k = 4, at the input's resolution (a quarter of the work of
    upsampling first). Each output pixel sees a quarter of the kernel's taps, the even and odd pixels different
    ones: without `fir` the output is scaled by 2 to keep demodulation's unit variance, and a constant input
    gives a checkerboard. fir: the low-pass after it (resample.Blur(gain=4)), which evens the taps out.
    """
    weight = weight * (1 / math.sqrt(weight[0].numel()))  # equalized learning rate
    x = x * styles[:, :, None, None]
    if up:
        out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=1)
        out = fir(out) if fir is not None else out * 2.0
    else:
        out = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:
        # sum_ik (s_i w_ijk)^2 = sum_i s_i^2 (sum_k w_ijk^2): (N, I) @ (I, O) -> (N, O)
        sigma_sq = styles.square() @ weight.square().sum(dim=(2, 3)).t()
        out = out * torch.rsqrt(sigma_sq + 1e-8)[:, :, None, None]
    return out


class SynthesisLayer(nn.Module):
    """A style-modulated convolution (3 x 3, or 4 x 4 transposed with stride 2 when `up`, low-passed with
    `fir`), then per-pixel noise B, bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False, fir: bool = True):
        super().__init__()
        self.up, self.resolution = up, resolution
        self.fir = resample.Blur(gain=4) if up and fir else None
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # A: styles start at 1 (no modulation)
        kernel = 4 if up else 3
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))  # B: learned, starts silent
        # the noise of evaluation mode: fixed, so one z always gives one image (saved with the weights)
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, fir=self.fir)
        if self.training:
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const
        return lrelu(x + noise * self.noise_strength + self.bias[:, None, None])


class ToRGB(nn.Module):
    """A modulated 1 x 1 convolution to image channels, without demodulation (StyleGAN2 figure 2d); with
    `up`, a 4 x 4 transposed one that doubles the resolution (low-passed with `fir`)."""

    def __init__(self, in_channels: int, channels: int, w_dim: int, up: bool = False, fir: bool = True):
        super().__init__()
        self.up = up
        self.fir = resample.Blur(gain=4) if up and fir else None
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        kernel = 4 if up else 1
        self.weight = nn.Parameter(torch.randn(channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return modulated_conv2d(x, self.weight, self.affine(w), demodulate=False, up=self.up, fir=self.fir) + self.bias[:, None, None]


def normalize_2nd_moment(z: torch.Tensor) -> torch.Tensor:
    """z / sqrt(mean(z^2)): the mapping network's input normalisation (StyleGAN section 2)."""
    return z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim); tracks the average w for the truncation trick (StyleGAN section 3.1).

    `w_avg` is a buffer: it is saved with the weights, and the trainer's EMA copies the live network's
    buffers into the averaged generator, so the generator that samples carries the average it was trained
    with, through checkpoints, resume and loading.
    """

    def __init__(self, z_dim: int, w_dim: int, n_layers: int, lr_mul: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in zip(dims, dims[1:])])
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.layers(normalize_2nd_moment(z))
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return w

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w' = w_avg + psi (w - w_avg) (StyleGAN eq. 4 in W)."""
        return self.w_avg.lerp(w, psi)


def channel_widths(size: int, width: int, max_width: int) -> Dict[int, int]:
    """Channels of the convolution resolutions 4 .. size / 2: `width` at size / 2, doubling per halving
    up to `max_width`."""
    return {r: min(max_width, width * size // (2 * r)) for r in resolutions(size)[:-1]}


class SynthesisBlock(nn.Module):
    """One resolution: [an upsampling convolution,] a convolution, and toRGB; each takes its own w slot."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, w_dim: int, resolution: int, fir: bool = True):
        super().__init__()
        first = [] if resolution == 4 else [SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, fir=fir)]
        self.convs = nn.ModuleList(first + [SynthesisLayer(out_channels, out_channels, w_dim, resolution)])
        self.to_rgb = ToRGB(out_channels, channels, w_dim)
        self.num_ws = len(self.convs) + 1

    def forward(self, x: torch.Tensor, img: Optional[torch.Tensor], ws: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """ws (N, num_ws, w_dim) -> (features, image so far: the upsampled previous image plus this toRGB)."""
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i])
        y = self.to_rgb(x, ws[:, -1])
        return x, y if img is None else upsample(img) + y


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, C, size, size) in [-1, 1].

    The image ends in tanh, as DCGAN's does, where StyleGAN's is unbounded: in a short CPU run the
    unbounded image stayed far from the data's range, which tanh reaches at once.
    """

    def __init__(self, w_dim: int, channels: int, size: int, width: int, max_width: int, fir: bool = True):
        super().__init__()
        ch = channel_widths(size, width, max_width)
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))  # the learned constant input
        self.blocks = nn.ModuleList(SynthesisBlock(ch[max(4, r // 2)], ch[r], channels, w_dim, r, fir) for r in ch)
        self.to_image = ToRGB(ch[size // 2], channels, w_dim, up=True, fir=fir)  # the full resolution's one layer
        self.size = size
        # the resolution each w slot drives, in the order the slots are used
        self.slot_resolution = [r for r, b in zip(ch, self.blocks) for _ in range(b.num_ws)] + [size]
        self.num_ws = len(self.slot_resolution)

    def level_mask(self, levels: Sequence[str]) -> torch.Tensor:
        """(num_ws,) bool: which w slots drive the named style levels."""
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown:
            raise UserError(f"unknown style level(s) {', '.join(map(str, unknown))}: choose from {', '.join(LEVELS)}")
        return torch.tensor([level_of(r, self.size) in levels for r in self.slot_resolution])

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x, img, i = self.const.expand(ws.shape[0], -1, -1, -1), None, 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_ws])
            i += block.num_ws
        return torch.tanh(upsample(img) + self.to_image(x, ws[:, i]))


class StyleGenerator(nn.Module):
    """z (N, z_dim) [+ ignored labels] -> images (N, C, size, size) in [-1, 1]: the mapping network, then the
    synthesis network at network_size(size), centre-cropped to size. fir: low-pass every upsampling."""

    def __init__(self, z_dim: int, w_dim: int, channels: int, size: int, width: int = 16, max_width: int = 128,
                 mapping_layers: int = 8, mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995, fir: bool = True):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, channels, network_size(size), width, max_width, fir)
        self.num_ws = self.synthesis.num_ws
        self.size = size

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> ws (N, num_ws, w_dim): the same style at every layer."""
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None, psi: float = 1.0) -> torch.Tensor:
        w = self.mapping(z)
        if psi != 1.0:
            w = self.mapping.truncate(w, psi)
        return self.crop(self.synthesis(self.broadcast(w)))

    def crop(self, img: torch.Tensor) -> torch.Tensor:
        """The synthesis network's image (N, C, S, S) -> the centre (N, C, size, size), as pad_to_multiple pads."""
        top = (img.shape[-1] - self.size) // 2
        return img[..., top : top + self.size, top : top + self.size]


class MinibatchStd(nn.Module):
    """Appends the mean over features of the standard deviation within groups of the batch (Karras 2018)."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:  # the largest group size <= group_size that divides the batch
            g -= 1
        y = x.reshape(g, n // g, c, h, w)  # sample a * (n // g) + b is member a of group b
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
        y = y.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block (StyleGAN2 figure 7c): (conv3, down + conv3) + down + conv1, scaled by 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_down = downsample(x)
        main = self.conv1(downsample(self.conv0(x)))
        return (self.skip(x_down) + main) * (1 / math.sqrt(2))


class StyleDiscriminator(nn.Module):
    """images (N, C, size, size) [+ ignored labels] -> raw scores (N,); images are padded (reflected) to
    network_size(size) first."""

    def __init__(self, channels: int, size: int, width: int = 16, max_width: int = 128, mbstd_group: int = 4):
        super().__init__()
        self.net_size = network_size(size)
        ch = channel_widths(self.net_size, width, max_width)
        self.from_rgb = EqualConv2d(channels, ch[self.net_size // 2], 4, stride=2)  # the full resolution's one layer
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[r], ch[r // 2]) for r in reversed(list(ch)) if r > 4])
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqualLinear(ch[4] * 16, ch[4], activate=True)
        self.out = EqualLinear(ch[4], 1)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x, _ = pad_to_multiple(x, self.net_size)
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


def mix_styles(ws_a: torch.Tensor, ws_b: torch.Tensor, from_b: torch.Tensor) -> torch.Tensor:
    """ws (N, num_ws, w_dim) of a, with the slots where from_b (num_ws,) or (N, num_ws) is true taken from b."""
    mask = from_b.to(ws_a.device)
    mask = mask[None, :, None] if mask.dim() == 1 else mask[:, :, None]
    return torch.where(mask, ws_b, ws_a)


def crossover_mask(n: int, num_ws: int, prob: float, device) -> torch.Tensor:
    """Style mixing regularisation (StyleGAN section 3.1): for a share `prob` of the batch, the w slots
    from a random crossover point on take a second latent. -> (N, num_ws) bool, true where it does."""
    mixed = torch.rand(n, device=device) < prob
    cutoff = torch.randint(1, num_ws, (n,), device=device)
    return (torch.arange(num_ws, device=device)[None, :] >= cutoff[:, None]) & mixed[:, None]
