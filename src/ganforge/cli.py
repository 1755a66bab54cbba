"""The `ganforge` command. Each sub-command parses its flags and calls the Python API.

A mistake the user can fix (a UserError, a bad flag) prints one line and exits with code 2; `--debug`
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

from ganforge.errors import UserError
from ganforge.version import __version__


# Commands that live beside the code they drive: (module, its add-arguments function, its run function, help).
PLUGGED_COMMANDS = {
    "eval": ("ganforge.commands.eval", "add_eval_arguments", "run_eval", "FID, KID, precision/recall and the digit figures"),
    "translate": ("ganforge.translate.command", "add_arguments", "run", "translate images with an image-to-image model"),
    "serve": ("ganforge.web.command", "add_arguments", "run", "a web page to explore trained models"),
    "explore": ("ganforge.explore.command", "add_arguments", "run", "style-mixing grids, latent interpolations and animated walks"),
    "runs": ("ganforge.commands.runs", "add_arguments", "run", "a table of the runs under a folder, with their quality figures"),
    "pretrained": ("ganforge.pretrained.command", "add_arguments", "run", "the pretrained generators that ship with ganforge"),
    "project": ("ganforge.commands.project", "add_arguments", "run", "find the latents of pictures (input | reconstruction, latents.npz)"),
    "edit": ("ganforge.commands.edit", "add_arguments", "run", "move latents along an editing direction (thick, sefa0, ...)"),
    "synth": ("ganforge.commands.synth", "add_arguments", "run", "a labelled data set from a class-conditional model"),
    "export": ("ganforge.export.command", "add_arguments", "run", "write a generator as ONNX or TorchScript"),
}


def _installed(name: str) -> bool:
    """Whether a plugged command's module is part of this install, found without importing it or its package
    (a package's __init__ may import torch)."""
    path = Path(__file__).parent.joinpath(*PLUGGED_COMMANDS[name][0].split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _plugged(name: str):
    """(add_arguments, run) of a plugged command, or None while its module is not part of this install."""
    import importlib

    module, add, run, _ = PLUGGED_COMMANDS[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise
    return getattr(mod, add), getattr(mod, run)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        raise UserError(f"{self.prog}: {message} (see --help)")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model", description="Train a GAN. Defaults are the paper's; see --show-config.")
    p.add_argument("model", help="model name (see `ganforge models`)")
    p.add_argument("--data", help="dataset: an embedded or downloadable name, a folder, a .zip or an .npz (default: the model's)")
    p.add_argument("--out", help="run folder (default runs/MODEL)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="generator steps")
    budget.add_argument("--minutes", type=float, help="wall-clock budget in minutes")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--config", help="YAML file of settings (same keys as config.yaml in a run)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override settings, e.g. optim.G.lr=1e-4 loss=lsgan")
    p.add_argument("--resume", nargs="?", const=True, default=False, choices=["auto"],
                   help="continue the run in --out from its last checkpoint; --resume auto: continue it if it has one, "
                        "else start it (for job schedulers that restart a preempted command)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained model")
    p.add_argument("run", help="a run folder, a checkpoint or generator file, pretrained:NAME or URL#sha256=HEX")
    p.add_argument("--n", type=int, default=64)
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--label", help="one class (index or name) for every sample")
    labels.add_argument("--labels", help="comma-separated classes, cycled over the samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="psi in (0, 1]: pull latents towards the average w (stylegan; 0.7 trades variety for quality)")
    p.add_argument("--code", metavar="NAME=VALUE,...",
                   help="fix latent codes in every sample, the others drawn (infogan: cat=3,c1=0.5)")
    p.add_argument("--grid", help="write a PNG grid here (default: RUN/samples/sample_seedS.png unless --npz is given)")
    p.add_argument("--npz", help="write images uint8 (N, H, W, C) at the data's native size, and labels")
    p.add_argument("--device", default="cpu")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of every command; a plugged command's own arguments (and so its module, which may import torch)
    only for `command`, the one about to run, or for all when it is None."""
    parser = _Parser(prog="ganforge", description="The GAN family, end to end.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    _add_sample(sub)
    sub.add_parser("models", help="list the models")
    sub.add_parser("datasets", help="list the embedded and downloadable datasets")
    for name, entry in PLUGGED_COMMANDS.items():
        if command in (None, name):
            plugged = _plugged(name)
            if plugged:
                plugged[0](sub.add_parser(name, help=entry[3]))
        elif _installed(name):
            sub.add_parser(name, help=entry[3])
    bench = sub.add_parser("bench", help="run the benchmarks under benchmarks/ and print their figures")
    bench.add_argument("names", nargs="*", help="benchmark names (default: all)")
    return parser


def cmd_train(args) -> int:
    from ganforge import api

    if args.show_config:
        from ganforge.config import dump

        how = dict(config_file=args.config, sets=args.set, out=args.out, resume=args.resume, data=args.data,
                   steps=args.steps, minutes=args.minutes, batch_size=args.batch_size, seed=args.seed, device=args.device)
        cfg = api.resolve_config(args.model, **how)
        if api.get_model(args.model).recipe:  # settings that follow the image: read the data to know its size
            cfg, _ = api.resolve_for_data(args.model, cfg, **how)
        print(dump(cfg), end="")
        return 0
    summary = api.train(args.model, data=args.data, out=args.out, steps=args.steps, minutes=args.minutes,
                        batch_size=args.batch_size, seed=args.seed, device=args.device, config=args.config,
                        set=args.set, resume=args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone reports
        return 0
    evaluating = summary.get("eval_minutes", 0.0)
    aside = f" (+ {evaluating:.1f} min of quality figures, not counted in --minutes)" if evaluating >= 0.05 else ""
    print(f"trained {args.model} for {summary['step']} steps in {summary['minutes']:.1f} min{aside} -> {summary['out']}")
    print(f"  samples:    {summary['samples']}")
    print(f"  losses:     {summary['losses']}")
    print(f"  checkpoint: {summary['checkpoint']}")
    m = summary["metrics"]
    if m:
        bookkeeping = ("n", "n_real", "seed", "coverage_min", "coverage_max", "seconds")
        figures = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()
                   if isinstance(v, (int, float)) and k not in bookkeeping]
        if "coverage_min" in m:
            figures.append(f"digit share {100 * m['coverage_min']:.1f}-{100 * m['coverage_max']:.1f}%")
        print(f"  quality (n={m.get('n')} samples, seed {m.get('seed', args.seed or 0)}): " + ", ".join(figures))
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    from ganforge import api
    from ganforge.imaging.grid import save_grid
    from ganforge.imaging.io import check_writable

    g = api.load(args.run, device=args.device)
    labels = [args.label] if args.label is not None else (args.labels.split(",") if args.labels else None)
    codes = None
    if args.code is not None:
        from ganforge.models.infogan import parse_codes

        codes = parse_codes(args.code)
    images = g.sample(args.n, labels=labels, seed=args.seed, truncation=args.truncation, codes=codes)
    written = []
    if args.npz:
        out = {"images": g.to_native_uint8(images).numpy()}
        if g.last_labels is not None:
            out["labels"] = g.last_labels.numpy().astype(np.int64)
        check_writable(args.npz)
        npz = args.npz if args.npz.endswith(".npz") else f"{args.npz}.npz"  # numpy would add it silently
        check_writable(npz)
        np.savez_compressed(npz, **out)
        written.append(npz)
    if args.grid or not args.npz:
        grid = args.grid or str(_grid_path(args.run, g, args.seed))
        check_writable(grid)
        nrow = len(g.classes) if g.last_labels is not None and labels is None and args.n % max(1, len(g.classes)) == 0 else None
        save_grid(images, grid, nrow=nrow, scale=max(1, 64 // images.shape[-1]))
        written.append(grid)
    print(f"{args.n} samples -> {', '.join(written)}")
    return 0


def _grid_path(source: str, g, seed: int) -> Path:
    """Where `sample` writes its grid by default: the run's samples/ folder, or ./samples/ for a model named by
    pretrained:NAME or URL (whose file lies in the package or the cache)."""
    from ganforge.pretrained import is_named

    if is_named(source):
        return Path("samples") / f"{g.file.stem}_seed{seed}.png"
    return _run_dir(source) / "samples" / f"sample_seed{seed}.png"


def _run_dir(path: str) -> Path:
    p = Path(path)
    if p.is_file():
        p = p.parent
    return p.parent if p.name == "checkpoints" else p


def cmd_models(args) -> int:
    from ganforge.models import MODELS

    width = max(len(n) for n in MODELS)
    for name, cls in MODELS.items():
        print(f"{name:<{width}}  {cls.summary}  [{cls.paper}]")
    return 0


def cmd_datasets(args) -> int:
    from ganforge.data import list_datasets

    rows = list_datasets()
    width = max(len(r[0]) for r in rows)
    for name, kind, desc in rows:
        print(f"{name:<{width}}  {kind:<10}  {desc}")
    return 0


def cmd_bench(args) -> int:
    import subprocess

    # the source checkout this package was installed from (pip install -e), else the current folder
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    root = here if here.is_dir() else Path.cwd() / "benchmarks"
    if not root.is_dir():
        raise UserError("the benchmarks ship with ganforge's source, not with the installed package: run `ganforge bench` "
                        "inside a source checkout, or install one with `pip install -e .`")
    scripts = sorted(root.glob("bench_*.py"))
    if args.names:
        wanted = {f"bench_{n}.py" if not n.startswith("bench_") else f"{n}.py" for n in args.names}
        missing = wanted - {s.name for s in scripts}
        if missing:
            raise UserError(f"unknown benchmark(s) {', '.join(sorted(missing))}; available: {', '.join(s.stem[6:] for s in scripts)}")
        scripts = [s for s in scripts if s.name in wanted]
    status = 0
    for script in scripts:
        print(f"== {script.stem[6:]}", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "models": cmd_models, "datasets": cmd_datasets, "bench": cmd_bench}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO, format="ganforge: %(message)s", stream=sys.stderr)
    logging.getLogger("ganforge").setLevel(logging.INFO)
    try:
        command = next((word for word in argv if not word.startswith("-")), None)
        args = build_parser(command if command in PLUGGED_COMMANDS else "").parse_args(argv)
        if args.command is None:
            build_parser("").print_help()
            return 2
        if args.command in PLUGGED_COMMANDS:
            return _plugged(args.command)[1](args)
        return COMMANDS[args.command](args)
    except UserError as e:
        if debug:
            raise
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted; the last checkpoint is intact (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
