"""`ganforge translate`: its flags, read into one call of `translate_files` (translate/__init__.py).

    ganforge translate RUN_OR_CKPT INPUT... --out DIR [--direction a2b|b2a] [--size S] [--full-res] [--mask M]
    ganforge translate STARGAN_RUN INPUT... --out DIR (--attrs red=1,thick=0 | --all-domains)
"""
from __future__ import annotations

from ganforge.translate import translate_files


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run folder or checkpoint of pix2pix, cyclegan, srgan, inpaint or stargan")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, or folders of them")
    parser.add_argument("--out", required=True, help="folder for the outputs, named as their inputs")
    parser.add_argument("--direction", choices=["a2b", "b2a"], default="a2b", help="cyclegan: A -> B (G) or B -> A (F)")
    parser.add_argument("--size", type=int, help="run the generator at S pixels on the long side")
    parser.add_argument("--full-res", action="store_true",
                        help="run the generator at its training size (or --size) and upsample the result to the "
                             "input's resolution with joint bilateral upsampling guided by the input")
    parser.add_argument("--mask", help="inpaint: a mask image of the input's size (white = fill in), or 'center'")
    parser.add_argument("--attrs", metavar="NAME=0|1,...",
                        help="stargan: target attributes, e.g. red=1,thick=0; the others keep the input's values")
    parser.add_argument("--all-domains", action="store_true",
                        help="stargan: write each input and its translations into every domain as one grid")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def run(args) -> int:
    written = translate_files(args.run, args.inputs, args.out, direction=args.direction, size=args.size,
                              full_res=args.full_res, mask=args.mask, attrs=args.attrs, all_domains=args.all_domains,
                              device=args.device)
    print(f"translated {len(written)} image{'s' if len(written) != 1 else ''} -> {args.out}")
    return 0
