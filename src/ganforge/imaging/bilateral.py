"""Edge-preserving filtering: the brute-force bilateral filter and the bilateral grid.

The bilateral filter (Tomasi & Manduchi 1998) averages each pixel p with its neighbours q weighted by
a spatial Gaussian on |p - q| times a range Gaussian on |I(p) - I(q)|, so it smooths flat regions but
not across edges. `bilateral_filter` and `joint_bilateral_filter` are the direct definition, exact and
slow (O(r^2) per pixel). The bilateral grid (Paris & Durand 2006; Chen, Paris & Durand 2007) makes it
cheap: pixels are `splat` into a coarse 3-D grid (y, x, intensity) as homogeneous (value * weight,
weight), the grid is `blur`red, and the result is read back with `slice` at each pixel's
(y, x, intensity) followed by the homogeneous division. `joint_bilateral_upsample` (Kopf et al. 2007)
uses the same grid to bring a low-resolution result back to the full resolution of its input.

Images are float (N, C, H, W) tensors on any device and every operator is differentiable. Values may
be in any range; ``sigma_r`` is in the guide's units, and the defaults assume images in [0, 1]
(double sigma_r for the networks' [-1, 1]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F

from ganforge.errors import UserError

# Splatting and slicing with trilinear hats each add a variance of 1/6 cell^2 per axis, and the
# [1, 4, 6, 4, 1] / 16 blur adds 1 cell^2: 4/3 cell^2 in all. A cell of sigma * sqrt(3/4) therefore
# gives the grid's kernel the requested sigma on each axis, so grid and brute force agree.
_CELL_PER_SIGMA = math.sqrt(3.0 / 4.0)
# Rec. 601 luma, the grey level the grid is built on.
_LUMA = (0.299, 0.587, 0.114)
# Largest grid splat builds (elements, 1 GiB in float32): beyond it sigma_s or sigma_r is far too small
# for the image (typically [0, 255] values with a sigma_r meant for [0, 1]).
_MAX_GRID_ELEMENTS = 2 ** 28
# Share of a grid column's weight added to each of its cells for joint upsampling (see there).
_FALLBACK_WEIGHT = 1e-3


def _check_image(tensor, name: str) -> None:
    if not torch.is_tensor(tensor) or tensor.dim() != 4:
        shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
        raise UserError(f"{name} must be a tensor (N, C, H, W), got {shape}")
    if not tensor.is_floating_point():
        raise UserError(f"{name} must be floating point, got {tensor.dtype}; convert uint8 images with to_float")


def _check_sigmas(sigma_s: float, sigma_r: float) -> None:
    if not sigma_s > 0 or not sigma_r > 0:
        raise UserError(f"sigma_s and sigma_r must be positive, got sigma_s={sigma_s}, sigma_r={sigma_r}")


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, H, W): Rec. 601 luma for RGB, the image itself for grey, else the channel mean."""
    _check_image(image, "image")
    if image.shape[1] == 1:
        return image
    if image.shape[1] == 3:
        r, g, b = image.unbind(dim=1)
        return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)
    return image.mean(dim=1, keepdim=True)


# ---------------------------------------------------------------------------------------------------
# Brute force: the definition


def joint_bilateral_filter(image: torch.Tensor, guide: torch.Tensor, sigma_s: float, sigma_r: float,
                           radius: Optional[int] = None) -> torch.Tensor:
    """The joint (cross) bilateral filter by its definition; range weights come from ``guide``.

    out(p) = sum_q w(p, q) image(q) / sum_q w(p, q) over the (2r+1)^2 window around p, with
    w(p, q) = exp(-|p - q|^2 / (2 sigma_s^2)) * exp(-|guide(p) - guide(q)|^2 / (2 sigma_r^2)), the
    range distance taken over all guide channels. Pixels outside the image are left out of both sums.
    ``radius`` defaults to ceil(3 sigma_s). image (N, C, H, W), guide (N, Cg, H, W) -> (N, C, H, W).

    Memory stays O(N C H W): the loop runs over the window's offsets, one shifted image at a time
    (under autograd each offset's weights are kept for the backward pass, so differentiate large
    images through the grid instead).
    """
    _check_image(image, "image")
    _check_image(guide, "guide")
    _check_sigmas(sigma_s, sigma_r)
    n, c, h, w = image.shape
    if guide.shape[0] != n or guide.shape[2:] != image.shape[2:]:
        raise UserError(f"guide {tuple(guide.shape)} must match image {tuple(image.shape)} in batch and size")
    r = math.ceil(3 * sigma_s) if radius is None else int(radius)
    if r < 0:
        raise UserError(f"radius must be >= 0, got {radius}")
    guide = guide.to(device=image.device, dtype=image.dtype)
    numerator = torch.zeros_like(image)
    denominator = image.new_zeros(n, 1, h, w)
    inv_two_var_r = 1.0 / (2 * sigma_r ** 2)
    for dy in range(-r, r + 1):
        # Output rows y0:y1 read input rows y0+dy:y1+dy; rows whose neighbour falls outside are skipped.
        y0, y1 = max(0, -dy), min(h, h - dy)
        if y0 >= y1:
            continue
        for dx in range(-r, r + 1):
            x0, x1 = max(0, -dx), min(w, w - dx)
            if x0 >= x1:
                continue
            spatial = (dy * dy + dx * dx) / (2 * sigma_s ** 2)
            centre = guide[:, :, y0:y1, x0:x1]
            neighbour = guide[:, :, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
            distance = (neighbour - centre).pow(2).sum(dim=1, keepdim=True)
            weight = torch.exp(-distance * inv_two_var_r - spatial)  # (N, 1, h', w')
            numerator[:, :, y0:y1, x0:x1] += weight * image[:, :, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
            denominator[:, :, y0:y1, x0:x1] += weight
    return numerator / denominator


def bilateral_filter(image: torch.Tensor, sigma_s: float, sigma_r: float, radius: Optional[int] = None) -> torch.Tensor:
    """The bilateral filter by its definition, range distance over all channels (see `joint_bilateral_filter`)."""
    return joint_bilateral_filter(image, image, sigma_s, sigma_r, radius)


# ---------------------------------------------------------------------------------------------------
# The bilateral grid


@dataclass
class BilateralGrid:
    """A bilateral grid and the mapping from image coordinates into it.

    ``data`` is (N, C+1, D, Hg, Wg): channels 0..C-1 hold sum(value * weight), channel C sum(weight);
    D indexes intensity, Hg and Wg space. A pixel centre (y, x) of the splatted image lies at
    ((y + 0.5) / cell_s, (x + 0.5) / cell_s), an intensity g at g / cell_r - range_offset[n].
    """

    data: torch.Tensor  # (N, C+1, D, Hg, Wg)
    cell_s: float  # pixels of the splatted image per spatial cell
    cell_r: float  # guide units per intensity cell
    range_offset: torch.Tensor  # (N,) whole cells: floor(min guide / cell_r) of each image
    height: int  # size of the splatted image; slicing at another size scales into this frame
    width: int


def splat(values: torch.Tensor, guide: torch.Tensor, sigma_s: float, sigma_r: float) -> BilateralGrid:
    """Scatter ``values`` (N, C, H, W) into a grid at the positions (y, x, guide) with trilinear weights.

    guide is grey (N, 1, H, W). sigma_s is in pixels of ``values``, sigma_r in guide units; they set
    the cell sizes so that `blur` then gives the bilateral kernel of those sigmas.
    """
    _check_image(values, "values")
    _check_image(guide, "guide")
    _check_sigmas(sigma_s, sigma_r)
    n, c, h, w = values.shape
    if guide.shape != (n, 1, h, w):
        raise UserError(f"guide must be grey (N, 1, H, W) = {(n, 1, h, w)}, got {tuple(guide.shape)}; "
                        "pass luminance(guide) for a colour guide")
    guide = guide.to(device=values.device, dtype=values.dtype)
    cell_s, cell_r = sigma_s * _CELL_PER_SIGMA, sigma_r * _CELL_PER_SIGMA
    device, dtype = values.device, values.dtype
    with torch.no_grad():
        if not bool(torch.isfinite(guide).all()):
            raise UserError("guide holds NaN or infinite values; the bilateral grid needs finite intensities")
        lowest, highest = guide.amin(dim=(1, 2, 3)), guide.amax(dim=(1, 2, 3))  # (N,)
        low = torch.floor(lowest / cell_r)
        depth = int((torch.floor(highest / cell_r) - low).max().item()) + 2  # +1: the top cell's upper corner
    grid_h = int(math.floor((h - 0.5) / cell_s)) + 2
    grid_w = int(math.floor((w - 0.5) / cell_s)) + 2
    if n * (c + 1) * depth * grid_h * grid_w > _MAX_GRID_ELEMENTS:
        raise UserError(f"a bilateral grid of {depth} x {grid_h} x {grid_w} cells is too large: the guide spans "
                        f"[{float(lowest.min()):.3g}, {float(highest.max()):.3g}] and sigma_r={sigma_r}, "
                        f"sigma_s={sigma_s}; scale images to [0, 1] or raise the sigmas")

    gy = (torch.arange(h, device=device, dtype=dtype) + 0.5) / cell_s  # (H,)
    gx = (torch.arange(w, device=device, dtype=dtype) + 0.5) / cell_s  # (W,)
    gz = guide[:, 0] / cell_r - low.view(n, 1, 1)  # (N, H, W), differentiable in the guide
    y0, x0, z0 = gy.floor(), gx.floor(), gz.detach().floor()
    fy, fx, fz = gy - y0, gx - x0, gz - z0
    y0, x0, z0 = y0.long(), x0.long(), z0.long()

    homogeneous = torch.cat([values, values.new_ones(n, 1, h, w)], dim=1).reshape(n, c + 1, h * w)
    data = values.new_zeros(n, c + 1, depth * grid_h * grid_w)
    for a in (0, 1):
        wy = fy if a else 1 - fy
        for b in (0, 1):
            wyx = (wy[:, None] * (fx if b else 1 - fx)[None, :])  # (H, W)
            cell_yx = (y0 + a)[:, None] * grid_w + (x0 + b)[None, :]  # (H, W)
            for cz in (0, 1):
                weight = wyx * (fz if cz else 1 - fz)  # (N, H, W)
                index = (z0 + cz) * (grid_h * grid_w) + cell_yx
                data.scatter_add_(2, index.reshape(n, 1, h * w).expand(n, c + 1, h * w),
                                  homogeneous * weight.reshape(n, 1, h * w))
    return BilateralGrid(data.view(n, c + 1, depth, grid_h, grid_w), cell_s, cell_r, low, h, w)


def blur(grid: BilateralGrid) -> BilateralGrid:
    """Convolve the grid with [1, 4, 6, 4, 1] / 16 along intensity, y and x (a Gaussian of one cell).

    Zero padding: weight that would leave the grid was outside the image, which is what the
    brute-force filter's normalisation does at the borders.
    """
    out = grid.data
    for dim in (2, 3, 4):
        size = out.shape[dim]
        # Pad by two zero cells on each side, then sum the five shifted copies with their taps, the
        # symmetric pairs first and in place: five passes over the grid where tap-by-tap took nine (a
        # 256-px output's grid at sigma_s 1 is as large as a 4 MP image's grey channel, 4 times over)
        padded = F.pad(out.movedim(dim, -1), (2, 2)).movedim(-1, dim)
        shifted = [padded.narrow(dim, shift, size) for shift in range(5)]
        out = shifted[0] + shifted[4]
        out.add_(shifted[1], alpha=4.0).add_(shifted[3], alpha=4.0).add_(shifted[2], alpha=6.0).mul_(1 / 16)
    return replace(grid, data=out)


def slice(grid: BilateralGrid, guide: torch.Tensor) -> torch.Tensor:
    """Read the grid at each guide pixel's (y, x, intensity) by trilinear interpolation, then divide.

    guide is grey (N, 1, H, W) at any size: its pixel centres are scaled into the frame of the image
    that was splatted, so a grid built at low resolution can be sliced at full resolution, whatever
    the two aspect ratios. Returns (N, C, H, W); 0 where the grid holds no weight at all.
    """
    _check_image(guide, "guide")
    data = grid.data
    n, k, d, gh, gw = data.shape
    if guide.shape[0] != n or guide.shape[1] != 1:
        raise UserError(f"guide must be grey (N, 1, H, W) with N = {n}, got {tuple(guide.shape)}")
    guide = guide.to(device=data.device, dtype=data.dtype)
    h, w = guide.shape[2:]
    device, dtype = data.device, data.dtype
    gy = (torch.arange(h, device=device, dtype=dtype) + 0.5) * (grid.height / h) / grid.cell_s
    gx = (torch.arange(w, device=device, dtype=dtype) + 0.5) * (grid.width / w) / grid.cell_s
    # grid_sample wants (x, y, z) in [-1, 1] with -1 and 1 at the first and last cell centres; each
    # coordinate is written straight into its place (at 4 MP, stacking full-size maps cost a fifth of the slice)
    coords = torch.empty(n, 1, h, w, 3, device=device, dtype=dtype)
    coords[..., 0] = (gx * (2 / (gw - 1)) - 1).view(1, 1, 1, w)
    coords[..., 1] = (gy * (2 / (gh - 1)) - 1).view(1, 1, h, 1)
    z_scale = 2 / ((d - 1) * grid.cell_r)  # guide intensity -> z, then shifted by the grid's range offset
    z_shift = (grid.range_offset.to(dtype) * (2 / (d - 1)) + 1).view(n, 1, 1, 1)
    coords[..., 2] = guide * z_scale - z_shift
    # Border padding clamps an intensity beyond the grid's range to its last cell: the nearest level.
    sampled = F.grid_sample(data, coords, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    weighted, weight = sampled[:, :-1], sampled[:, -1:]
    return weighted / weight.clamp_min(torch.finfo(dtype).tiny)


def bilateral_grid_filter(image: torch.Tensor, sigma_s: float, sigma_r: float,
                          guide: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The bilateral filter through the grid: splat, blur, slice on the luminance of ``guide``
    (default: the image itself). Approximates `joint_bilateral_filter(image, luminance(guide), ...)`.
    """
    _check_image(image, "image")
    grey = luminance(image if guide is None else guide)
    if grey.shape[0] != image.shape[0] or grey.shape[2:] != image.shape[2:]:
        raise UserError(f"guide {tuple(guide.shape)} must match image {tuple(image.shape)} in batch and size")
    return slice(blur(splat(image, grey, sigma_s, sigma_r)), grey)


def joint_bilateral_upsample(low_res_output: torch.Tensor, high_res_guide: torch.Tensor, sigma_s: float = 1.0,
                             sigma_r: float = 0.05, low_res_guide: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bring ``low_res_output`` (N, C, h, w) to the size of ``high_res_guide`` (N, Cg, H, W), with the
    guide's edges (joint bilateral upsampling, Kopf et al. 2007).

    The output is splatted into a grid at the positions and intensities of the guide as the low
    resolution saw it (``low_res_guide``, default the guide resized to (h, w) with antialiasing),
    blurred, and sliced at every full-resolution guide pixel: a full-resolution pixel takes the
    low-resolution results of pixels near it *and* of similar intensity, so edges follow the guide.
    sigma_s is in low-resolution pixels, sigma_r in guide units; the defaults suit a guide in [0, 1]
    (sigma_r = 0.1 for [-1, 1]). A narrow sigma_r matters here: low-resolution pixels on an edge
    mix both sides, and a wide range kernel lets that mixture bleed into the full-resolution edge
    (a noise-free 4 MP test photo through 256 px: 0.05 beat 0.1 by 8 dB). The two sizes may have
    different aspect ratios (the low-resolution image is taken to cover the whole guide). Where no
    low-resolution pixel nearby has a similar intensity, the result falls back to the spatial
    average of the low-resolution output.
    """
    _check_image(low_res_output, "low_res_output")
    _check_image(high_res_guide, "high_res_guide")
    n, c, h, w = low_res_output.shape
    if high_res_guide.shape[0] != n:
        raise UserError(f"high_res_guide has batch {high_res_guide.shape[0]}, low_res_output {n}; they must match")
    grey = luminance(high_res_guide.to(low_res_output))
    if low_res_guide is None:
        grey_low = F.interpolate(grey, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    else:
        _check_image(low_res_guide, "low_res_guide")
        grey_low = luminance(low_res_guide.to(low_res_output))
        if grey_low.shape != (n, 1, h, w):
            raise UserError(f"low_res_guide {tuple(low_res_guide.shape)} must match low_res_output "
                            f"{tuple(low_res_output.shape)} in batch and size")
    grid = blur(splat(low_res_output, grey_low, sigma_s, sigma_r))
    # A full-res intensity that no nearby low-res pixel had finds an empty cell. Each cell gets a small
    # share of its whole column (all intensities at that place), so such pixels take the spatial average.
    grid = replace(grid, data=grid.data + _FALLBACK_WEIGHT * grid.data.sum(dim=2, keepdim=True))
    return slice(grid, grey)
