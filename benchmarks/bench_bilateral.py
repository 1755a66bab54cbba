"""Bilateral grid against the brute-force bilateral filter at 1 MP, and the full-resolution path of
translation: a generator at low resolution + joint bilateral upsampling to 4 MP, against the
generator run at 4 MP.

    python benchmarks/bench_bilateral.py [--threads N] [--reps 3]

The test photos are built from real MNIST digits (colourised, on a smooth background, with noise).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import ganforge
from ganforge.imaging.bilateral import bilateral_grid_filter, joint_bilateral_filter, joint_bilateral_upsample, luminance
from ganforge.imaging import similarity

MNIST = Path(ganforge.__file__).parent / "data" / "assets" / "mnist5k.npz"


def photo(height: int, width: int, seed: int = 0, noise: float = 0.03) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1]: a 4 x 4 mosaic of large colourised digits with hard edges on a smooth
    colour gradient, plus noise; flat regions, strong edges and texture, like a photograph."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.from_numpy(np.load(MNIST)["images"][:16]).float().div(255).unsqueeze(1)
    tiles = F.interpolate(digits, size=(math.ceil(height / 4), math.ceil(width / 4)), mode="bilinear", align_corners=False)
    mosaic = tiles.view(4, 4, *tiles.shape[2:]).permute(0, 2, 1, 3).reshape(1, 1, 4 * tiles.shape[2], 4 * tiles.shape[3])
    shape = (mosaic[..., :height, :width] > 0.5).float()
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    background = torch.stack([0.2 + 0.3 * xx, 0.3 + 0.2 * yy, 0.5 - 0.2 * xx * yy])[None]
    ink = torch.tensor([0.9, 0.6, 0.2]).view(1, 3, 1, 1)
    image = background * (1 - shape) + ink * shape
    return (image + noise * torch.randn(image.shape, generator=generator)).clamp(0, 1)


def timed(function, reps: int):
    """Best wall time of ``reps`` runs (seconds) and the last result. The process's CPU time of that
    run goes to ``timed.cpu``: on a loaded machine wall time overstates the cost, CPU time does not."""
    best = math.inf
    for _ in range(reps):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = function()
        wall = time.perf_counter() - start
        if wall < best:
            best, timed.cpu = wall, time.process_time() - cpu_start
    return best, result


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(similarity.psnr(a.reshape(1, -1), b.reshape(1, -1)))


class ResnetGeneratorCost(nn.Sequential):
    """The shape of CycleGAN's ResNet generator (Zhu 2017: c7s1-64, d128, d256, 9 x R256, u128, u64,
    c7s1-3) with random weights: only its cost per pixel matters here."""

    def __init__(self, ngf: int = 64, blocks: int = 9):
        def conv(cin, cout, k, stride=1):
            return [nn.Conv2d(cin, cout, k, stride, k // 2, padding_mode="reflect" if stride == 1 else "zeros"),
                    nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]

        def up(cin, cout):
            return [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]

        layers = conv(3, ngf, 7) + conv(ngf, 2 * ngf, 3, 2) + conv(2 * ngf, 4 * ngf, 3, 2)
        layers += [Residual(4 * ngf) for _ in range(blocks)]
        layers += up(4 * ngf, 2 * ngf) + up(2 * ngf, ngf)
        layers += [nn.Conv2d(ngf, 3, 7, padding=3, padding_mode="reflect"), nn.Tanh()]
        super().__init__(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
                                  nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


def bench_filter(reps: int) -> None:
    image = photo(1000, 1000)
    grey = luminance(image)
    print("1 MP (1000 x 1000 RGB) bilateral filter, range on luminance, sigma_r = 0.1")
    for sigma_s, crop in ((8, 256), (16, 128)):
        grid_s, _ = timed(lambda: bilateral_grid_filter(image, sigma_s, sigma_r=0.1), reps)
        grid_cpu = timed.cpu
        # Brute force on a crop (the whole image would take minutes), extrapolated per pixel.
        top = 500 - crop // 2
        patch, patch_grey = image[..., top:top + crop, top:top + crop], grey[..., top:top + crop, top:top + crop]
        brute_s, brute_out = timed(lambda: joint_bilateral_filter(patch, patch_grey, sigma_s, 0.1), 1)
        brute_cpu = timed.cpu
        grid_patch = bilateral_grid_filter(patch, sigma_s, 0.1)
        per_mp = brute_s * 1e6 / crop ** 2
        radius = math.ceil(3 * sigma_s)
        print(f"  sigma_s {sigma_s:2d} (brute-force window {2 * radius + 1}^2): grid {grid_s:.3f} s (CPU {grid_cpu:.3f} s)"
              f" | brute force {brute_s:.2f} s (CPU {brute_cpu:.2f} s) on a {crop} x {crop} crop = {per_mp:.0f} s per MP"
              " (extrapolated) | "
              f"grid {per_mp / grid_s:.0f}x faster | grid vs brute force on the crop {psnr(grid_patch, brute_out):.1f} dB")


def bench_full_res(reps: int, ngf: int, blocks: int, low: int) -> None:
    image = photo(2000, 2000, seed=1)
    print(f"4 MP (2000 x 2000 RGB): generator at {low} px + joint bilateral upsampling vs generator at 4 MP")
    small = F.interpolate(image, size=(low, low), mode="bilinear", align_corners=False, antialias=True)
    translated = small.flip(1)  # a stand-in low-res output; the upsample's cost does not depend on it
    jbu_s, _ = timed(lambda: joint_bilateral_upsample(translated, image, low_res_guide=small), reps)
    print(f"  joint bilateral upsample {low} x {low} -> 2000 x 2000: {jbu_s:.3f} s (CPU {timed.cpu:.3f} s)")

    # Quality on a per-pixel translation (a colour map), where the full-res answer is known. Noise
    # finer than the low resolution cannot come back, so the noise-free photo is shown as well.
    def colour_map(x):
        return torch.stack([x[:, 2], 1 - x[:, 0], 0.5 * x[:, 1] + 0.25], dim=1)

    for name, full in (("noisy", image), ("noise-free", photo(2000, 2000, seed=1, noise=0.0))):
        shrunk = F.interpolate(full, size=(low, low), mode="bilinear", align_corners=False, antialias=True)
        truth = colour_map(full)
        upsampled = joint_bilateral_upsample(colour_map(shrunk), full, low_res_guide=shrunk)
        bicubic = F.interpolate(colour_map(shrunk), size=(2000, 2000), mode="bicubic", align_corners=False)
        print(f"  per-pixel translation at {low} px vs at 4 MP ({name} photo): joint bilateral upsample "
              f"{psnr(upsampled, truth):.1f} dB, bicubic {psnr(bicubic, truth):.1f} dB")

    generator = ResnetGeneratorCost(ngf, blocks).eval()
    with torch.no_grad():
        def low_path():
            shrunk = F.interpolate(image * 2 - 1, size=(low, low), mode="bilinear", align_corners=False, antialias=True)
            return joint_bilateral_upsample(generator(shrunk), image * 2 - 1, sigma_r=0.2, low_res_guide=shrunk)

        low_s, _ = timed(low_path, reps)
        low_cpu = timed.cpu
        tile = 512
        tile_s, _ = timed(lambda: generator(torch.rand(1, 3, tile, tile) * 2 - 1), max(1, reps - 1))
        tile_cpu = timed.cpu
    full_s = tile_s * (2000 * 2000) / tile ** 2
    full_cpu = tile_cpu * (2000 * 2000) / tile ** 2
    print(f"  ResNet generator (ngf {ngf}, {blocks} blocks, random weights): full-res path {low_s:.2f} s "
          f"(CPU {low_cpu:.2f} s); generator at 4 MP {full_s:.1f} s (CPU {full_cpu:.1f} s; timed on a {tile} x {tile} "
          f"tile, extrapolated per pixel); full-res path {full_s / low_s:.0f}x faster (CPU {full_cpu / low_cpu:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reps", type=int, default=3, help="runs per timing; the best is reported")
    parser.add_argument("--ngf", type=int, default=64, help="generator width for the full-resolution comparison")
    parser.add_argument("--blocks", type=int, default=9, help="generator residual blocks")
    parser.add_argument("--low", type=int, default=256, help="generator resolution on the full-res path")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    with torch.no_grad():
        bench_filter(args.reps)
    bench_full_res(args.reps, args.ngf, args.blocks, args.low)


if __name__ == "__main__":
    main()
