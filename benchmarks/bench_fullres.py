"""`ganforge translate --full-res` on a 4 MP photo against the generator run at full resolution.

    python benchmarks/bench_fullres.py [--threads N] [--steps 300] [--low 256] [--run RUN]

Without --run, a pix2pix model is first trained (a short run at 64 px, width 16) on a per-pixel photo
filter (a colour map), so the true full-resolution answer is known. Then one 2000 x 2000 photo goes
through the translate path twice, each timed: the generator at 4 MP (the baseline), and --full-res (the
generator at --low px on the long side, then joint bilateral upsampling guided by the photo). Printed: the
times, the speed-up (target >= 5x), the PSNR between the two outputs, and each output's PSNR against the
filter applied to the full photo. A small generator costs little more than the upsampling itself, so the
same two paths are also timed with a generator the size of the paper's (width 64, 256-px training): the
generator `--full-res` is for, and the one the >= 5x target applies to. The photo is built from real MNIST digits (colourised, on a smooth
background, with noise), the same kind as in bench_bilateral.py.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import ganforge
from ganforge import api
from ganforge.imaging import similarity
from ganforge.data import PairedImageData
from ganforge.translate import translate_image

MNIST = Path(ganforge.__file__).parent / "data" / "assets" / "mnist5k.npz"


def photo(height: int, width: int, seed: int, noise: float = 0.02) -> torch.Tensor:
    """(3, H, W) in [0, 1]: a 4 x 4 mosaic of large digits in random colours over a smooth colour gradient."""
    g = torch.Generator().manual_seed(seed)
    digits = torch.from_numpy(np.load(MNIST)["images"][seed * 16 : seed * 16 + 16]).float().div(255).unsqueeze(1)
    tiles = F.interpolate(digits, size=(math.ceil(height / 4), math.ceil(width / 4)), mode="bilinear", align_corners=False)
    mosaic = tiles.view(4, 4, *tiles.shape[2:]).permute(0, 2, 1, 3).reshape(1, 1, 4 * tiles.shape[2], 4 * tiles.shape[3])
    ink = mosaic[..., :height, :width].clamp(0, 1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    background = torch.stack([0.2 + 0.5 * xx, 0.3 + 0.4 * yy, 0.6 - 0.3 * xx * yy])[None]
    colour = torch.rand(1, 3, 1, 1, generator=g) * 0.5 + 0.5
    image = background * (1 - ink) + colour * ink
    return (image + noise * torch.randn(image.shape, generator=g)).clamp(0, 1)[0]


def photo_filter(x: torch.Tensor) -> torch.Tensor:
    """The translation to learn, per pixel: (C, H, W) or (N, C, H, W) in [0, 1] -> a toned colour version."""
    r, g, b = x.unbind(dim=-3)
    return torch.stack([1 - g, 0.5 * (r + b), r * r], dim=-3)


def train_filter_model(out: Path, steps: int, threads: int):
    """pix2pix (width 16, 64 px) on 2,000 random 64-px crops of other photos at random scales and their filtered versions."""
    from ganforge.training.trainer import Trainer

    g = torch.Generator().manual_seed(0)
    crops = []
    for seed in range(1, 9):
        source = photo(512, 512, seed)
        for _ in range(250):
            side = int(torch.randint(64, 512, (1,), generator=g))
            top, left = (int(v) for v in torch.randint(0, 512 - side + 1, (2,), generator=g))
            crop = source[None, :, top : top + side, left : left + side]
            crops.append(F.interpolate(crop, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)[0])
    a = torch.stack(crops)
    data = PairedImageData(name="photo-filter", images=to_uint8(a), images_b=to_uint8(photo_filter(a)), paired=True)
    cfg = api.resolve_config("pix2pix", sets=["width=16", "log.every=50", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"],
                             out=str(out), steps=steps, batch_size=8)
    torch.set_num_threads(threads)
    start = time.process_time()
    Trainer(cfg, out, progress=False, data=data).fit()
    return time.process_time() - start


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> uint8, rounded."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def paper_size_model(out: Path, threads: int):
    """A pix2pix model the size of the paper's (U-Net width 64 with eight levels, for 256-px training), after
    one step: only its cost matters here."""
    from ganforge.training.trainer import Trainer

    a = to_uint8(torch.stack([photo(256, 256, seed) for seed in (1, 2)]))
    data = PairedImageData(name="photos", images=a, images_b=to_uint8(photo_filter(a.float() / 255)), paired=True)
    cfg = api.resolve_config("pix2pix", sets=["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"],
                             out=str(out), steps=1, batch_size=2)
    torch.set_num_threads(threads)
    Trainer(cfg, out, progress=False, data=data).fit()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(similarity.psnr(torch.from_numpy(a).reshape(1, -1), torch.from_numpy(b).reshape(1, -1), peak=255.0))


def timed(function):
    start, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - start, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on a shared machine)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the filter model (without --run)")
    parser.add_argument("--low", type=int, default=256, help="generator resolution on the --full-res path (long side)")
    parser.add_argument("--run", help="a trained image-to-image run to time instead (no PSNR against a known answer)")
    parser.add_argument("--no-paper", action="store_true", help="skip timing the paper-size pix2pix generator")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "filter"
            cpu = train_filter_model(run, args.steps, args.threads)
            print(f"trained pix2pix (width 16, 64 px) on a per-pixel photo filter: {args.steps} steps, {cpu:.0f} CPU-s")
        generator = ganforge.load(run)
        image = photo(2000, 2000, seed=0)
        array = to_uint8(image).permute(1, 2, 0).numpy()
        with torch.no_grad():
            full_s, full_cpu, full = timed(lambda: translate_image(generator, array))
            low_s, low_cpu, low = timed(lambda: translate_image(generator, array, full_res=True, size=args.low))
        if not args.no_paper:
            paper_size_model(Path(tmp) / "paper", args.threads)
            paper = ganforge.load(Path(tmp) / "paper")
            with torch.no_grad():
                paper_full_s, paper_full_cpu, _ = timed(lambda: translate_image(paper, array))
                paper_low_s, paper_low_cpu, _ = timed(lambda: translate_image(paper, array, full_res=True))
    print("4 MP photo (2000 x 2000 RGB) through translate:")
    print(f"  generator at 4 MP:                     {full_s:6.2f} s (CPU {full_cpu:6.2f} s)")
    print(f"  --full-res (generator at {args.low} px + JBU): {low_s:6.2f} s (CPU {low_cpu:6.2f} s)  "
          f"-> {full_s / low_s:.1f}x faster (CPU {full_cpu / low_cpu:.1f}x; this generator costs about what the upsampling does)")
    print(f"  PSNR between the two outputs: {psnr(full, low):.1f} dB")
    if args.run is None:
        truth = to_uint8(photo_filter(image)).permute(1, 2, 0).numpy()
        print(f"  PSNR against the filter applied at 4 MP: generator at 4 MP {psnr(full, truth):.1f} dB, "
              f"--full-res {psnr(low, truth):.1f} dB")
    if not args.no_paper:
        print("the paper-size pix2pix generator (U-Net width 64, trained at 256 px; timing only):")
        print(f"  generator at 4 MP: {paper_full_s:.2f} s (CPU {paper_full_cpu:.2f} s); --full-res at 256 px: "
              f"{paper_low_s:.2f} s (CPU {paper_low_cpu:.2f} s) -> {paper_full_s / paper_low_s:.1f}x faster "
              f"(CPU {paper_full_cpu / paper_low_cpu:.1f}x; target >= 5x)")


if __name__ == "__main__":
    main()
