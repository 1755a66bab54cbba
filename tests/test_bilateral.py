"""The bilateral operators against their brute-force definitions, on real digits and synthetic edges."""
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.errors import UserError
from ganforge.imaging import similarity
from ganforge.imaging.bilateral import (
    bilateral_filter,
    bilateral_grid_filter,
    blur,
    joint_bilateral_filter,
    joint_bilateral_upsample,
    luminance,
    slice,
    splat,
)

MNIST = Path(ganforge.__file__).parent / "data" / "assets" / "mnist5k.npz"


def psnr(a, b, peak=1.0):
    """Over all pixels as one image."""
    return float(similarity.psnr(a.reshape(1, -1), b.reshape(1, -1), peak))


@pytest.fixture(scope="module")
def digits():
    """Four real digits in [0, 1], upscaled x2 to (4, 1, 56, 56), with a little noise to smooth away."""
    images = torch.from_numpy(np.load(MNIST)["images"][:4]).float().div(255).unsqueeze(1)
    generator = torch.Generator().manual_seed(0)
    big = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    return big + 0.03 * torch.randn(big.shape, generator=generator)


@pytest.fixture(scope="module")
def sharp_digits():
    """Real digit shapes with hard edges at (4, 1, 112, 112), levels 0.15 and 0.85."""
    images = torch.from_numpy(np.load(MNIST)["images"][10:14]).float().div(255).unsqueeze(1)
    shapes = F.interpolate(images, scale_factor=4, mode="bilinear", align_corners=False) > 0.5
    return 0.15 + 0.7 * shapes.float()


def noisy_step(height=32, width=64, noise=0.05):
    """A vertical step edge from 0 to 1 at column width // 2, with Gaussian noise."""
    generator = torch.Generator().manual_seed(1)
    step = torch.zeros(1, 1, height, width)
    step[..., width // 2:] = 1
    return step, step + noise * torch.randn(step.shape, generator=generator)


def colourise(grey):
    """A stand-in translation: a fixed per-pixel map from grey (N, 1, H, W) to RGB."""
    return torch.cat([grey, 1 - grey, 0.5 * grey + 0.2], dim=1)


def test_brute_force_matches_the_definition_pixel_by_pixel():
    # An independent per-pixel loop in float64 numpy, including the borders.
    rng = np.random.default_rng(0)
    image = rng.random((2, 5, 6))
    sigma_s, sigma_r, radius = 1.3, 0.4, 2
    expected = np.zeros_like(image)
    for y in range(5):
        for x in range(6):
            total, norm = 0, 0
            for qy in range(max(0, y - radius), min(5, y + radius + 1)):
                for qx in range(max(0, x - radius), min(6, x + radius + 1)):
                    distance = ((image[:, qy, qx] - image[:, y, x]) ** 2).sum()
                    weight = math.exp(-((qy - y) ** 2 + (qx - x) ** 2) / (2 * sigma_s ** 2)
                                      - distance / (2 * sigma_r ** 2))
                    total, norm = total + weight * image[:, qy, qx], norm + weight
            expected[:, y, x] = total / norm
    got = bilateral_filter(torch.from_numpy(image)[None], sigma_s, sigma_r, radius=radius)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_grid_filter_is_close_to_brute_force_on_digits(digits):
    for sigma_s, sigma_r in ((2.0, 0.1), (3.0, 0.2)):
        exact = bilateral_filter(digits, sigma_s, sigma_r)
        grid = bilateral_grid_filter(digits, sigma_s, sigma_r)
        # The grid's kernel is the same Gaussian up to its trilinear interpolation: measured ~52-57 dB.
        assert psnr(grid, exact) >= 40
        # ... while the filter itself does something: far from the noisy input.
        assert psnr(exact, digits) < 35


def test_grid_filter_on_colour_follows_the_luminance_guide(digits):
    # RGB: the grid ranges over luminance, so it approximates the joint filter guided by luminance.
    rgb = torch.cat([digits, 1 - digits, 0.5 * digits.flip(-1)], dim=1)
    exact = joint_bilateral_filter(rgb, luminance(rgb), 2.0, 0.1)
    assert psnr(bilateral_grid_filter(rgb, 2.0, 0.1), exact) >= 40


@pytest.mark.parametrize("method", ["brute force", "grid"])
def test_step_edge_stays_sharp_and_flat_regions_are_smoothed(method):
    step, noisy = noisy_step()
    if method == "grid":
        out = bilateral_grid_filter(noisy, 3.0, 0.2)
    else:
        out = bilateral_filter(noisy, 3.0, 0.2)
    # A Gaussian blur of the same sigma_s (the bilateral filter with an infinite sigma_r) smears it.
    blurred = bilateral_filter(noisy, 3.0, 1e6)
    profile, blurred_profile = out[0, 0, 8:-8].mean(0), blurred[0, 0, 8:-8].mean(0)
    assert profile[32] - profile[31] > 0.95
    assert blurred_profile[32] - blurred_profile[31] < 0.2
    # Noise in the flat halves drops by more than 5x.
    assert out[0, 0, :, :24].std() < noisy[0, 0, :, :24].std() / 5
    assert (out - step)[..., :, 4:-4].abs().mean() < 0.01


def test_slice_returns_a_constant_wherever_it_was_splatted(digits):
    # Homogeneous division: a constant comes back unchanged whatever the guide, blurred or not.
    constant = torch.full((4, 3, 56, 56), 0.37)
    grid = splat(constant, digits, 2.0, 0.1)
    torch.testing.assert_close(slice(grid, digits), constant)
    torch.testing.assert_close(slice(blur(grid), digits), constant)


def test_splat_conserves_weight_and_value(digits):
    values = digits.repeat(1, 2, 1, 1) * torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    grid = splat(values, digits, 2.5, 0.15)
    assert grid.data.shape[:2] == (4, 3)
    # Trilinear weights of each pixel sum to one: the weight channel counts the pixels.
    torch.testing.assert_close(grid.data[:, -1].sum(dim=(1, 2, 3)), torch.full((4,), 56.0 * 56))
    torch.testing.assert_close(grid.data[:, :2].sum(dim=(2, 3, 4)), values.sum(dim=(2, 3)), rtol=1e-5, atol=1e-3)


def test_gradients_flow_through_splat_blur_slice_and_brute_force():
    generator = torch.Generator().manual_seed(2)
    values = torch.rand(1, 2, 4, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    guide = torch.rand(1, 1, 4, 5, dtype=torch.float64, generator=generator, requires_grad=True)

    def check(function, *inputs):
        assert torch.autograd.gradcheck(function, inputs, fast_mode=True)

    check(lambda v, g: splat(v, g, 1.5, 0.3).data, values, guide)
    grid = blur(splat(values.detach(), guide.detach(), 1.5, 0.3))
    data = grid.data.clone().requires_grad_(True)
    check(lambda d, g: slice(replace(grid, data=d), g), data, guide)
    check(lambda v, g: bilateral_grid_filter(v, 1.5, 0.3, guide=g), values, guide)
    check(lambda v, g: joint_bilateral_filter(v, g, 1.0, 0.3, radius=2), values, guide)
    check(lambda v: bilateral_filter(v, 1.0, 0.3, radius=2), values)
    big_guide = torch.rand(1, 1, 8, 10, dtype=torch.float64, generator=generator, requires_grad=True)
    check(lambda v, g: joint_bilateral_upsample(v, g, sigma_r=0.2), values, big_guide)


def test_joint_upsample_equals_bicubic_on_smooth_images_with_another_aspect_ratio():
    # Smooth low-res content (16 x 16) brought to 64 x 128: with a guide that has no edges, the
    # result is an interpolation of the low-res image, so it agrees with bicubic.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    low = torch.stack([0.5 + 0.3 * torch.sin(3 * xx + 2 * yy), 0.3 + 0.4 * yy * xx, 0.6 - 0.2 * torch.cos(4 * yy)])[None]
    bicubic = F.interpolate(low, size=(64, 128), mode="bicubic", align_corners=False)
    out = joint_bilateral_upsample(low, bicubic)
    assert out.shape == (1, 3, 64, 128)
    assert (out - bicubic)[..., 8:-8, 8:-8].abs().max() < 0.03
    assert psnr(out, bicubic) > 38


def test_joint_upsample_keeps_the_guide_edges(sharp_digits):
    # A per-pixel translation computed at 1/4 resolution comes back with the full-res digit edges;
    # bicubic upsampling smears them.
    low = colourise(F.interpolate(sharp_digits, size=(28, 28), mode="area"))
    truth = colourise(sharp_digits)
    out = joint_bilateral_upsample(low, sharp_digits)
    bicubic = F.interpolate(low, size=(112, 112), mode="bicubic", align_corners=False)
    # Measured: 46 dB against 23 dB for bicubic.
    assert psnr(out, truth) > psnr(bicubic, truth) + 12


def test_joint_upsample_is_close_to_its_brute_force_definition(sharp_digits):
    # Kopf et al.: out(p) = sum_q low(q) f(|p_low - q|) g(|guide(p) - guide_low(q)|) / sum of weights,
    # q over every low-res pixel, p_low = p's centre in low-res pixel coordinates.
    guide = sharp_digits[:1, :, :48, :64]
    guide_low = F.interpolate(guide, size=(12, 16), mode="bilinear", align_corners=False, antialias=True)
    low = colourise(guide_low)
    sigma_s, sigma_r = 1.0, 0.1
    py, px = torch.meshgrid((torch.arange(48) + 0.5) / 4 - 0.5, (torch.arange(64) + 0.5) / 4 - 0.5, indexing="ij")
    qy, qx = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    spatial = ((py.reshape(-1, 1) - qy.reshape(1, -1)) ** 2 + (px.reshape(-1, 1) - qx.reshape(1, -1)) ** 2)
    ranges = (guide.reshape(-1, 1) - guide_low.reshape(1, -1)) ** 2
    weights = torch.exp(-spatial / (2 * sigma_s ** 2) - ranges / (2 * sigma_r ** 2))  # (48*64, 12*16)
    exact = (weights @ low[0].reshape(3, -1).T / weights.sum(1, keepdim=True)).T.reshape(1, 3, 48, 64)
    out = joint_bilateral_upsample(low, guide, sigma_s=sigma_s, sigma_r=sigma_r)
    assert psnr(out, exact) > 35


def test_batch_of_two_equals_two_single_calls(digits, sharp_digits):
    pair = torch.cat([digits[:1], 2 * digits[1:2] + 3])  # different value ranges within one batch
    for op in (lambda x: bilateral_grid_filter(x, 2.0, 0.1), lambda x: bilateral_filter(x, 1.5, 0.1, radius=3)):
        torch.testing.assert_close(op(pair), torch.cat([op(pair[:1]), op(pair[1:])]), rtol=1e-5, atol=1e-5)
    guide = sharp_digits[:2]
    low = colourise(F.interpolate(guide, size=(28, 28), mode="area"))
    both = joint_bilateral_upsample(low, guide)
    single = torch.cat([joint_bilateral_upsample(low[i:i + 1], guide[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(both, single, rtol=1e-5, atol=1e-5)


def test_sigma_r_scales_with_the_value_range(digits):
    # sigma_r is in the image's units: doubling both gives the same result, doubled.
    for op in (bilateral_grid_filter, bilateral_filter):
        torch.testing.assert_close(op(digits * 2, 2.0, 0.2), op(digits, 2.0, 0.1) * 2, rtol=1e-4, atol=1e-4)


def test_bad_arguments_raise_one_clear_error(digits):
    with pytest.raises(UserError, match="floating point"):
        bilateral_grid_filter((digits * 255).to(torch.uint8), 2.0, 0.1)
    with pytest.raises(UserError, match=r"\(N, C, H, W\)"):
        bilateral_filter(digits[0], 2.0, 0.1)
    with pytest.raises(UserError, match="positive"):
        bilateral_grid_filter(digits, 0.0, 0.1)
    with pytest.raises(UserError, match="grey"):
        splat(digits, digits.repeat(1, 3, 1, 1), 2.0, 0.1)
    with pytest.raises(UserError, match="batch"):
        joint_bilateral_upsample(digits[:2], digits[:3])
    # [0, 255] values with a sigma_r of a thousandth of a level would need a grid of gigabytes.
    with pytest.raises(UserError, match="scale images to"):
        bilateral_grid_filter(digits * 255, 2.0, 0.001)
    broken = digits.clone()
    broken[0, 0, 3, 3] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        bilateral_grid_filter(broken, 2.0, 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu(digits):
    on_gpu = bilateral_grid_filter(digits.cuda(), 2.0, 0.1).cpu()
    torch.testing.assert_close(on_gpu, bilateral_grid_filter(digits, 2.0, 0.1), rtol=1e-4, atol=1e-4)
    low = F.interpolate(digits, size=(14, 14), mode="area")
    on_gpu = joint_bilateral_upsample(low.cuda(), digits.cuda()).cpu()
    torch.testing.assert_close(on_gpu, joint_bilateral_upsample(low, digits), rtol=1e-4, atol=1e-4)
