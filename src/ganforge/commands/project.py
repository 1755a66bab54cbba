"""`ganforge project RUN IMAGE... --out DIR`: find the latent of each picture (latent/project.py).

Writes NAME_projected.png per input (the input beside its reconstruction) and one latents.npz for the batch,
which `edit`, `explore` and the web page read; prints PSNR and SSIM per picture.
"""
from __future__ import annotations

from pathlib import Path

from ganforge.config import MAX_SEED
from ganforge.errors import UserError


def add_arguments(parser) -> None:
    from ganforge.latent.project import DEFAULT_STEPS

    parser.add_argument("run", help="a run folder or checkpoint of a noise-to-image model")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="pictures to project (PNG, JPEG, ...)")
    parser.add_argument("--out", required=True, help="folder for NAME_projected.png per picture and latents.npz")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"optimisation steps (default {DEFAULT_STEPS})")
    parser.add_argument("--space", help="the latent space: w+ (stylegan's default), w or z (the other families' only one)")
    parser.add_argument("--seed", type=int, default=0, help="the latent noise and random starts; the same seed, the same result")
    parser.add_argument("--label", help="class-conditional models: the class of the pictures (index or name), "
                                        "or one per picture separated by commas")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    from ganforge import api
    from ganforge.latent.project import read_targets, write_results
    from ganforge.latent.space import check_space

    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    seen = {}
    for path in args.images:
        stem = Path(path).stem
        if stem in seen:
            raise UserError(f"{seen[stem]} and {path} would both be written to {out / (stem + '_projected.png')}: "
                            "project them separately")
        seen[stem] = path
    g = api.load(args.run, device=args.device)
    check_space(g.model, args.space or g.model.latent_spaces[0])  # a family without latents is refused before any file is read
    targets = read_targets(args.images, g.model.channels, g.model.size)
    labels = None if args.label is None else [s.strip() for s in args.label.split(",")]
    latents, images = api.project(g, targets, steps=args.steps, space=args.space, seed=args.seed, labels=labels,
                                  progress=not args.quiet)
    pictures, latent_file = write_results(out, args.images, targets, images, latents, g.meta["model"])
    width = max(len(Path(p).name) for p in args.images)
    for i, path in enumerate(args.images):
        print(f"{Path(path).name:<{width}}  PSNR {latents.figures['psnr'][i]:6.2f} dB  SSIM {latents.figures['ssim'][i]:.4f}"
              f"  -> {pictures[i]}")
    print(f"{len(args.images)} latent(s) in {latents.space} -> {latent_file}")
    return 0
