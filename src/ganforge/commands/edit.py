"""`ganforge edit RUN LATENTS.npz --direction NAME --strength S --out DIR`: move latents along an editing direction
(latent/directions.py); pictures in place of the latent file are projected first (latent/project.py).

Writes NAME_edited.png per latent (the name of the picture it was projected from, else its index) and one
latents.npz of the edited latents, which `edit`, `explore` and the web page read again.
"""
from __future__ import annotations

from pathlib import Path

from ganforge.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run folder or checkpoint of a noise-to-image model")
    parser.add_argument("inputs", nargs="+", metavar="LATENTS.npz | IMAGE",
                        help="a latent file (ganforge project writes one), or pictures to project first")
    parser.add_argument("--direction", required=True, help="the direction's name (`ganforge explore RUN directions` shows them)")
    parser.add_argument("--strength", type=float, required=True,
                        help="how far, in standard deviations of the model's latents along the direction (negative: the other way)")
    parser.add_argument("--out", required=True, help="folder for NAME_edited.png per latent and latents.npz")
    parser.add_argument("--keep", help="stay orthogonal to these directions, comma-separated, or none "
                                       "(default: thick keeps the digits)")
    parser.add_argument("--hold", choices=["digit", "none"],
                        help="hold the digit read at the start along the edit (default: for thick on digit models)")
    parser.add_argument("--steps", type=int, help="pictures: the projection's optimisation steps")
    parser.add_argument("--space", help="pictures: the space to project into (w+, w or z)")
    parser.add_argument("--seed", type=int, help="pictures: the projection's seed")
    parser.add_argument("--label", help="pictures, class-conditional models: their class, or one per picture separated by commas")
    parser.add_argument("--quiet", action="store_true", help="no progress bar while projecting")
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    from ganforge import api
    from ganforge.explore.command import parse_names
    from ganforge.imaging.io import write_png
    from ganforge.latent.directions import space_of
    from ganforge.latent.space import save_latents

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    latent_files = [p for p in args.inputs if Path(p).suffix.lower() == ".npz"]
    projecting = [flag for flag, value in (("--steps", args.steps), ("--space", args.space), ("--seed", args.seed),
                                           ("--label", args.label)) if value is not None]
    if latent_files:
        if len(args.inputs) > 1:
            raise UserError("give one latent file, or pictures to project, not both nor several latent files")
        if projecting:
            raise UserError(f"{projecting[0]} is for projecting pictures; {latent_files[0]} already holds latents")
    g = api.load(args.run, device=args.device)
    space_of(g)  # a family without latents is refused before any file is read
    if latent_files:
        latents = latent_files[0]
    else:
        labels = None if args.label is None else [s.strip() for s in args.label.split(",")]
        latents, _ = api.project(g, args.inputs, steps=args.steps, space=args.space, seed=args.seed or 0, labels=labels,
                                 progress=not args.quiet)
    edited, images = api.edit(g, latents, args.direction, args.strength, keep=parse_names(args.keep, "--keep"), hold=args.hold)
    stems = [Path(str(n)).stem for n in edited.figures["inputs"]] if "inputs" in edited.figures else None
    names = stems if stems and len(set(stems)) == len(stems) else [f"{i:04d}" for i in range(len(edited))]
    pixels = g.to_native_uint8(images)
    written = [write_png(out / f"{name}_edited.png", picture.numpy()) for name, picture in zip(names, pixels)]
    latent_file = save_latents(out / "latents.npz", edited, g.meta["model"])
    print(f"{len(edited)} latent(s) moved {args.strength:g} along {args.direction} in {edited.space} -> {latent_file}; "
          f"images {written[0]}{' ...' if len(written) > 1 else ''}")
    return 0
