"""`ganforge explore`: its flags, read into calls of the Explorer (explore/__init__.py).

    ganforge explore RUN mix         --out mix.png    [--rows 3] [--cols 5] [--seed S] [--truncation PSI]
    ganforge explore RUN interpolate --out strip.png  [--seeds 0,1,2] [--steps 8] [--space w|z]
    ganforge explore RUN gif         --out walk.gif   [--seeds 0,1,2,3] [--steps 16] [--space w|z] [--fps 12]
    ganforge explore RUN codes       --out grid.png   [--code c1] [--steps 8] [--seed S]
    ganforge explore RUN directions  --out dirs.png   [--seed S] [--strengths -3 -1 0 1 3] [--names thick,sefa0]
                                                      [--keep NAME,... | none] [--hold digit|none]
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from ganforge.config import MAX_SEED
from ganforge.errors import UserError
from ganforge.explore import LEVELS, SPACES, Explorer


def parse_seeds(text: str) -> List[int]:
    """'0,1,5' -> [0, 1, 5]."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds must be comma-separated whole numbers, e.g. 0,1,2; got '{text}'") from None
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise UserError(f"--seeds must be between 0 and {MAX_SEED}, got '{text}'")
    return seeds


def parse_levels(text: str) -> List[str]:
    """'coarse,fine' -> ["coarse", "fine"]."""
    levels = [lv.strip() for lv in text.split(",") if lv.strip()]
    if not levels or any(lv not in LEVELS for lv in levels):
        raise UserError(f"--levels must be a comma-separated choice of {', '.join(LEVELS)}, got '{text}'")
    return levels


def check_strengths(strengths: List[float]) -> List[float]:
    """1 to 16 finite strengths within +-100, else one line."""
    if not 1 <= len(strengths) <= 16 or any(not -100 <= s <= 100 for s in strengths):  # nan fails both
        raise UserError(f"--strengths takes 1 to 16 numbers between -100 and 100, got {' '.join(f'{s:g}' for s in strengths)}")
    return strengths


def parse_names(text: Optional[str], flag: str = "--names") -> Optional[List[str]]:
    """'thick,sefa0' -> ["thick", "sefa0"]; None stays None, and 'none' is the empty list."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"{flag} takes comma-separated direction names, got '{text}'")
    return [] if names == ["none"] else names


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run folder or checkpoint of a noise-to-image model")
    parser.add_argument("what", choices=["mix", "interpolate", "gif", "codes", "directions"],
                        help="mix: style-mixing grid; interpolate: strips between seeds; gif: an animated walk; "
                             "codes: a row per categorical code, a continuous code swept across (infogan); "
                             "directions: each editing direction at several strengths")
    parser.add_argument("--out", required=True, help="the picture to write (.png, or .gif for gif)")
    parser.add_argument("--seed", type=int, default=0, help="mix: the first seed (A rows, then B columns); codes: the noise; "
                                                             "directions: the seed edited")
    parser.add_argument("--code", help="codes: the continuous code swept from -2 to 2 along each row (default c1)")
    parser.add_argument("--rows", type=int, default=3, help="mix: source-A images per level")
    parser.add_argument("--cols", type=int, default=5, help="mix: source-B images")
    parser.add_argument("--levels", default="coarse,middle,fine", help="mix: the style levels, in row order")
    parser.add_argument("--seeds", default="0,1,2,3", help="interpolate, gif: the seeds to pass through, in order")
    parser.add_argument("--steps", type=int, help="interpolate, gif: images per leg, both ends included (default 8, gif 16); "
                                                  "codes: columns (default 8)")
    parser.add_argument("--space", choices=SPACES, help="interpolate, gif: lerp in W or slerp in Z (default w where the model has one)")
    parser.add_argument("--fps", type=float, default=12.0, help="gif: frames per second")
    parser.add_argument("--strengths", nargs="+", type=float, metavar="S",
                        help="directions: the strengths, in standard deviations of the model's latents (default -3 -2 -1 0 1 2 3)")
    parser.add_argument("--names", help="directions: the directions to show, comma-separated (default all)")
    parser.add_argument("--keep", help="directions: stay orthogonal to these directions (default: thick keeps the "
                                       "digits), or none")
    parser.add_argument("--hold", choices=["digit", "none"], help="directions: hold the digit read at the start along "
                                                                  "each edit (default: for thick on digit models)")
    parser.add_argument("--truncation", type=float, help="psi in (0, 1]: pull every latent towards the average w")
    parser.add_argument("--label", help="conditional models: the class to keep along every path")
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    from ganforge import api
    from ganforge.imaging.io import write_png

    only = [flag for flag, value in (("--strengths", args.strengths), ("--names", args.names), ("--keep", args.keep),
                                     ("--hold", args.hold)) if value is not None]
    if only and args.what != "directions":
        raise UserError(f"{only[0]} applies to `explore RUN directions`, not {args.what}")
    if args.what == "directions" and args.truncation is not None:
        raise UserError("--truncation does not apply to directions: an edit moves the untruncated latent")
    g = api.load(args.run, device=args.device)
    explorer = Explorer(g, args.label)
    psi = 1.0
    if args.truncation is not None:
        api.check_truncation(g, args.truncation)
        psi = args.truncation
    space = args.space or ("w" if explorer.has_styles else "z")
    if args.code is not None and args.what != "codes":
        raise UserError(f"--code picks the code that the codes picture sweeps; drop it for {args.what}")
    out = Path(args.out)
    if args.what == "gif":
        if out.suffix.lower() != ".gif":
            raise UserError(f"--out must end in .gif for an animation, got '{args.out}'")
        explorer.gif(out, parse_seeds(args.seeds), args.steps or 16, space, psi, args.fps)
    else:
        if args.what == "mix":
            grid = explorer.mixing_grid(args.rows, args.cols, args.seed, psi, parse_levels(args.levels))
        elif args.what == "codes":
            grid = explorer.code_grid(args.code, args.steps or 8, args.seed)
        elif args.what == "directions":
            found = api.directions(g)
            names = parse_names(args.names) or found.names
            for name in names:
                found.index(name)  # an unknown name: one line listing them, before any edit runs
            strengths = check_strengths(args.strengths or [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
            grid = explorer.directions_grid(found, names, strengths, args.seed, parse_names(args.keep, "--keep"), args.hold)
            print(f"rows: {', '.join(names)}; columns: strengths {', '.join(f'{s:g}' for s in strengths)}")
        else:
            grid = explorer.strip(parse_seeds(args.seeds), args.steps or 8, space, psi)
        scale = max(1, 64 // g.model.size)
        write_png(out, grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2).permute(1, 2, 0).numpy())
    print(f"{args.what} -> {out}")
    return 0
