"""Adaptive discriminator augmentation (Karras et al. 2020, Training Generative Adversarial Networks with
Limited Data): the "bgc" pipeline of appendix B and the heuristic that tunes its probability p.

Every image D sees, real or fake, goes through the same random transforms, each applied with probability p:
blit (x-flip, 90-degree rotation, integer translation), geometric (isotropic scaling, rotation, anisotropic
scaling, rotation, fractional translation) and colour (brightness, contrast, luma flip, hue rotation,
saturation). With p below about 0.8 the augmentations do not leak into G's images (section 2.2), since G can
only match the augmented real distribution by producing the real one.

The geometric transforms compose into one 3x3 matrix per image and are applied in one resampling (bilinear,
reflected at the borders as the paper pads), the colour ones into one 4x4 matrix. The whole pipeline is
differentiable in the images, twice over (R1 and gradient penalties on augmented inputs). Draws come from
torch's global RNG on the images' device, which checkpoints save.

p starts at `augment.p` and, every `interval` D steps, moves by sign(r_t - target) * (images seen) / speed,
where r_t = E[sign(D(real))] over those steps measures how sure D is of the reals (section 3), so p can go
from 0 to 1 in `speed` images.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F

Tensor = torch.Tensor

# Appendix B's distributions: the standard deviations of the log-normal scales (log2 units times ln 2), of the
# fractional translation (a share of the image size), of the brightness offset; integer translations reach
# 1/8 of the image size.
SCALE_STD = 0.2 * math.log(2)
ANISO_STD = 0.2 * math.log(2)
XINT_MAX = 0.125
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5 * math.log(2)
SATURATION_STD = 1.0 * math.log(2)
LUMA_AXIS = (1 / math.sqrt(3),) * 3  # colours rotate and reflect about the grey axis

# The uniform and normal draws each image takes, in the order the pipeline reads them.
_UNIFORMS, _NORMALS = 21, 7


def _eye(n: int, size: int, device) -> Tensor:
    return torch.eye(size, device=device).expand(n, size, size).clone()


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scaling(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotation(cos: Tensor, sin: Tensor) -> Tensor:
    m = _eye(cos.shape[0], 3, cos.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


def _gate(u: Tensor, p: float, value: Tensor, identity: float) -> Tensor:
    """`value` where the image's draw u falls under p, else the transform's identity parameter."""
    return torch.where(u < p, value, torch.full_like(value, identity))


def geometric_matrices(u: Tensor, z: Tensor, p: float, h: int, w: int) -> Tuple[Tensor, Tensor]:
    """(N, 3, 3) maps from an output pixel to the input pixel it reads, in pixels about the image centre, and
    (N,) whether any geometric transform was drawn for the image. u: (N, 14) uniform draws, z: (N, 4) normal.

    Composing on the right applies the image-space transforms in pipeline order (out(x) = in(T1^-1 ... Tk^-1 x));
    each is drawn from a distribution symmetric under inversion, so drawing T^-1 draws T."""
    n, device = u.shape[0], u.device
    p_rot = 1 - math.sqrt(1 - p)  # two rotations, so that a rotation happens with probability p overall
    gates = torch.stack([u[:, 0] < p, u[:, 1] < p, u[:, 2] < p, u[:, 3] < p, u[:, 4] < p_rot, u[:, 5] < p,
                         u[:, 6] < p_rot, u[:, 7] < p], dim=1)
    m = _eye(n, 3, device)
    flip = _gate(u[:, 0], p, 1 - 2 * (u[:, 8] < 0.5).float(), 1.0)
    m = m @ _scaling(flip, torch.ones_like(flip))
    quarter = _gate(u[:, 1], p, torch.floor(u[:, 9] * 4).clamp(max=3), 0.0).long()
    cos90 = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[quarter]  # exact, so a pure blit lands on pixels
    sin90 = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[quarter]
    m = m @ _rotation(cos90, sin90)
    tx = _gate(u[:, 2], p, torch.round((u[:, 10] * 2 - 1) * XINT_MAX * w), 0.0)
    ty = _gate(u[:, 2], p, torch.round((u[:, 11] * 2 - 1) * XINT_MAX * h), 0.0)
    m = m @ _translation(tx, ty)
    s = _gate(u[:, 3], p, torch.exp(z[:, 0] * SCALE_STD), 1.0)
    m = m @ _scaling(s, s)
    theta = _gate(u[:, 4], p_rot, (u[:, 12] * 2 - 1) * math.pi, 0.0)
    m = m @ _rotation(torch.cos(theta), torch.sin(theta))
    a = _gate(u[:, 5], p, torch.exp(z[:, 1] * ANISO_STD), 1.0)
    m = m @ _scaling(a, 1 / a)
    theta = _gate(u[:, 6], p_rot, (u[:, 13] * 2 - 1) * math.pi, 0.0)
    m = m @ _rotation(torch.cos(theta), torch.sin(theta))
    tx = _gate(u[:, 7], p, z[:, 2] * XFRAC_STD * w, 0.0)
    ty = _gate(u[:, 7], p, z[:, 3] * XFRAC_STD * h, 0.0)
    m = m @ _translation(tx, ty)
    return m, gates.any(dim=1)


def colour_matrices(u: Tensor, z: Tensor, p: float) -> Tensor:
    """(N, 4, 4) affine maps of (r, g, b, 1) about mid-grey (0 in [-1, 1]), applied in pipeline order.
    u: (N, 7) uniform draws, z: (N, 3) normal."""
    n, device = u.shape[0], u.device
    v = torch.tensor([*LUMA_AXIS, 0.0], device=device)
    vv = torch.outer(v, v)  # (4, 4) projection onto the grey axis
    eye = torch.eye(4, device=device)
    c = _eye(n, 4, device)
    b = _gate(u[:, 0], p, z[:, 0] * BRIGHTNESS_STD, 0.0)
    shift = _eye(n, 4, device)
    shift[:, :3, 3] = b[:, None]
    c = shift @ c
    k = _gate(u[:, 1], p, torch.exp(z[:, 1] * CONTRAST_STD), 1.0)
    contrast = _eye(n, 4, device)
    contrast[:, 0, 0] = contrast[:, 1, 1] = contrast[:, 2, 2] = k
    c = contrast @ c
    flip = _gate(u[:, 2], p, (u[:, 5] < 0.5).float(), 0.0)  # Householder reflection of the luma axis
    c = (eye - 2 * vv * flip[:, None, None]) @ c
    theta = _gate(u[:, 3], p, (u[:, 6] * 2 - 1) * math.pi, 0.0)  # rotation about the luma axis (Rodrigues)
    cross = torch.zeros(4, 4, device=device)
    cross[0, 1], cross[0, 2], cross[1, 0], cross[1, 2], cross[2, 0], cross[2, 1] = -v[2], v[1], v[2], -v[0], -v[1], v[0]
    cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    hue = vv + (eye - vv) * cos + cross * sin
    hue[:, 3, 3] = 1.0
    c = hue @ c
    s = _gate(u[:, 4], p, torch.exp(z[:, 2] * SATURATION_STD), 1.0)[:, None, None]
    saturation = vv + (eye - vv) * s
    saturation[:, 3, 3] = 1.0
    return saturation @ c


def apply_geometric(x: Tensor, m: Tensor, applied: Tensor) -> Tensor:
    """Resample images (N, C, H, W) through pixel maps (N, 3, 3) in one bilinear pass, reflecting at the borders;
    images with no transform drawn pass through exactly."""
    n, _, h, w = x.shape
    # pixels about the centre <-> affine_grid's [-1, 1] (align_corners=False: -1 and 1 are the outer edges)
    to_pixels = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=x.device))
    to_unit = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=x.device))
    theta = (to_unit @ m @ to_pixels)[:, :2, :]
    # at least float32 coordinates and taps: a half-precision grid is too coarse to place a pixel
    work = torch.promote_types(x.dtype, torch.float32)
    grid = F.affine_grid(theta.to(work), [n, 1, h, w], align_corners=False)
    out = F.grid_sample(x.to(work), grid, mode="bilinear", padding_mode="reflection", align_corners=False).to(x.dtype)
    return torch.where(applied[:, None, None, None], out, x)


def apply_colour(x: Tensor, c: Tensor) -> Tensor:
    """Colour maps (N, 4, 4) on images (N, C, H, W): RGB for C = 3 (and 4, alpha untouched); grey (C = 1, 2)
    as the mean of what the map makes of (g, g, g)."""
    n, channels = x.shape[:2]
    c = c.to(x.dtype)
    if channels >= 3:
        rgb = torch.einsum("nij,njhw->nihw", c[:, :3, :3], x[:, :3]) + c[:, :3, 3, None, None]
        return torch.cat([rgb, x[:, 3:]], dim=1) if channels > 3 else rgb
    gain = c[:, :3, :3].sum(dim=2).mean(dim=1)  # (N,)
    offset = c[:, :3, 3].mean(dim=1)
    grey = x[:, :1] * gain[:, None, None, None] + offset[:, None, None, None]
    return torch.cat([grey, x[:, 1:]], dim=1) if channels > 1 else grey


def augment(x: Tensor, p: float) -> Tensor:
    """The bgc pipeline on images (N, C, H, W) in [-1, 1], each transform applied with probability p.
    At p = 0 the input itself comes back: no draw, no resampling."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    u = torch.rand(n, _UNIFORMS, device=x.device)
    z = torch.randn(n, _NORMALS, device=x.device)
    m, moved = geometric_matrices(u[:, :14], z[:, :4], p, h, w)
    x = apply_geometric(x, m, moved)
    return apply_colour(x, colour_matrices(u[:, 14:], z[:, 4:], p))


class AdaptiveAugment(nn.Module):
    """The ADA pipeline with its p, and the statistics of D's verdicts on reals that move p.

    p is a host number, so the pipeline's p = 0 shortcut costs no device sync; the statistics stay on the
    device until the trainer adjusts p (`due`, `totals`, `adjust`), every `interval` D steps."""

    def __init__(self, p: float = 0.0, target: float = 0.6, interval: int = 4, speed: float = 500_000,
                 threshold: float = 0.0):
        super().__init__()
        self.p, self.target, self.interval, self.speed = float(p), float(target), int(interval), float(speed)
        self.threshold = threshold  # D's decision boundary: 0 for logits, 0.5 for LSGAN's targets 0 and 1
        self.rt: Optional[float] = None  # the last r_t
        self.batches = 0  # D steps observed since the last adjustment
        # sum over real images of sign(D(x) - threshold) (a map's mean per image), and the images counted
        self.register_buffer("signs", torch.zeros(()), persistent=False)
        self.register_buffer("seen", torch.zeros(()), persistent=False)

    @property
    def active(self) -> bool:
        return self.p > 0.0

    @property
    def adaptive(self) -> bool:
        """interval 0 holds p fixed at augment.p."""
        return self.interval > 0

    def forward(self, x: Tensor) -> Tensor:
        return augment(x, self.p)

    @torch.no_grad()
    def observe(self, scores: Tensor) -> None:
        """D's adversarial outputs (N, ...) on a D step's real batch."""
        n = scores.shape[0]
        self.signs += torch.sign(scores.detach().float() - self.threshold).reshape(n, -1).mean(dim=1).sum()
        self.seen += n
        self.batches += 1

    def due(self) -> bool:
        return self.adaptive and self.batches >= self.interval

    def totals(self) -> Tensor:
        """(2,) the sum of signs and the images seen since the last adjustment (summed over ranks by the caller)."""
        return torch.stack([self.signs, self.seen])

    def hold(self, totals: Tensor) -> None:
        """Take (2,) totals as the statistics gathered since the last adjustment."""
        self.signs.copy_(totals[0])
        self.seen.copy_(totals[1])

    def adjust(self, signs: float, seen: float) -> None:
        """Move p towards the target r_t and start the next interval (section 3)."""
        if seen > 0:
            self.rt = signs / seen
            direction = (self.rt > self.target) - (self.rt < self.target)
            # the paper floors p at 0; p = 1 already applies every transform to every image
            self.p = min(max(self.p + direction * seen / self.speed, 0.0), 1.0)
        self.signs.zero_()
        self.seen.zero_()
        self.batches = 0

    def state(self) -> Dict:
        """What a checkpoint keeps (plain numbers: JSON keeps floats exactly)."""
        return {"p": self.p, "rt": self.rt, "batches": self.batches, "signs": float(self.signs), "seen": float(self.seen)}

    def load_state(self, state: Dict) -> None:
        self.p, self.rt, self.batches = float(state["p"]), state["rt"], int(state["batches"])
        self.signs.fill_(state["signs"])
        self.seen.fill_(state["seen"])
