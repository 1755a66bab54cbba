"""Train the pretrained generators of the catalogue (src/ganforge/pretrained/__init__.py) and write their files.

    .venv/bin/python tools/train_pretrained.py                      # every entry: CPU-hours
    .venv/bin/python tools/train_pretrained.py --only dcgan-mnist5k # one entry
    .venv/bin/python tools/train_pretrained.py --check              # each file's size from its networks, no training
    .venv/bin/python tools/train_pretrained.py --table              # the README's table from figures.json

Each entry is one `ganforge.api.train` run with the entry's seed and step budget, in RUNS/NAME (continued with
--resume auto when the tool is run again after an interruption, equal to the uninterrupted run). The run's own
last evaluation gives the figures; `ganforge.api.save_generator` writes DEST/NAME.safetensors (the EMA generator
in fp16 with config, data, licence and figures in its metadata) and DEST/figures.json records the figures, the
steps, the minutes and the command. --steps and --set change the run, and the command recorded says so.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's ganforge, installed or not

from ganforge import api  # noqa: E402
from ganforge.errors import UserError  # noqa: E402
from ganforge.models import MODELS, get_model  # noqa: E402
from ganforge.pretrained import CATALOGUE, FIGURES, FOLDER, MAX_FILE_BYTES, MAX_TOTAL_BYTES, Pretrained  # noqa: E402
from ganforge.pretrained.command import describe_figures  # noqa: E402
from ganforge.training.generator_file import data_licence  # noqa: E402


def chosen(only: List[str]) -> List[Pretrained]:
    names = [n for part in only for n in part.split(",") if n]
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise UserError(f"--only: no catalogue entry {', '.join(unknown)}; the entries: {', '.join(CATALOGUE)}")
    return [CATALOGUE[n] for n in names] if names else list(CATALOGUE.values())


def registered(entry: Pretrained) -> bool:
    if entry.family in MODELS:
        return True
    print(f"skipped {entry.name}: the {entry.family} family is not registered in this ganforge", flush=True)
    return False


def estimated_bytes(entry: Pretrained, sets: List[str]) -> int:
    """The size of the entry's file from its networks built at the data's size: floats in fp16, the rest as they are."""
    how = dict(data=entry.data, sets=[*entry.train_sets(), *sets], seed=entry.seed)
    cfg, data = api.resolve_for_data(entry.family, api.resolve_config(entry.family, **how), **how)
    model = get_model(entry.family)(cfg, data.info())
    tensors = [t for net in model.ema_nets for t in getattr(model, net).state_dict().values()]
    return sum(t.numel() * (2 if t.is_floating_point() else t.element_size()) for t in tensors)


def train_one(entry: Pretrained, steps: int, sets: List[str], runs: Path, dest: Path, quiet: bool) -> Dict:
    """Train the entry, write its generator file into `dest` and return its figures.json record."""
    command = entry.command(steps, sets)
    print(f"== {entry.name}: {command}", flush=True)
    summary = api.train(entry.family, data=entry.data, out=str(runs / entry.name), steps=steps, seed=entry.seed,
                        set=[*entry.train_sets(), *sets], resume="auto", progress=not quiet)
    figures = summary["metrics"]
    path = api.save_generator(summary["checkpoint"], entry.file(dest), name=entry.name, figures=figures, command=command)
    size = path.stat().st_size
    print(f"   {summary['step']:,} steps in {summary['minutes']:.1f} min: {describe_figures(figures)} -> {path} "
          f"({size / 1e6:.2f} MB)", flush=True)
    return {"family": entry.family, "data": entry.data, "seed": entry.seed, "steps": summary["step"], "command": command,
            "minutes": round(summary["minutes"], 2), "figures": figures, "bytes": size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "licence": entry.licence}


def table(dest: Path) -> str:
    """The README's table of pretrained generators, from figures.json."""
    records = json.loads((dest / FIGURES).read_text()) if (dest / FIGURES).is_file() else {}
    lines = ["| name | family | data (licence) | command | figures | file |", "|---|---|---|---|---|---|"]
    for name, r in records.items():
        credit = data_licence(r["data"])
        licence = re.search(r"CC BY[-A-Z]* \d\.\d", credit)  # the data's licence in short; the credits say the rest
        lines.append(f"| `pretrained:{name}` | {r['family']} | {r['data']} ({licence.group(0) if licence else credit}) | "
                     f"`{r['command']}` ({r['minutes']:.1f} minutes) | {describe_figures(r['figures'])} | {r['bytes'] / 1e6:.1f} MB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]", help="these entries alone")
    parser.add_argument("--steps", type=int, help="train every chosen entry this many steps instead of its budget")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="settings added to every chosen run")
    parser.add_argument("--runs", default="runs/pretrained", help="where the run folders go (default runs/pretrained)")
    parser.add_argument("--dest", default=str(FOLDER), help="where the files and figures.json go (default: the package)")
    parser.add_argument("--check", action="store_true", help="print each file's size from its networks; train nothing")
    parser.add_argument("--table", action="store_true", help="print the README's table from DEST/figures.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    dest, runs = Path(args.dest), Path(args.runs)
    if args.table:
        print(table(dest))
        return 0
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    entries = [e for e in chosen(args.only) if registered(e)]
    if args.check:
        sizes = []
        for entry in entries:
            sizes.append(estimated_bytes(entry, args.set))
            flag = "" if sizes[-1] <= MAX_FILE_BYTES else f"  over the {MAX_FILE_BYTES / 1e6:.0f} MB a file may take"
            print(f"{entry.name:<22} {sizes[-1] / 1e6:5.2f} MB{flag}", flush=True)
        print(f"{'together':<22} {sum(sizes) / 1e6:5.2f} MB (at most {MAX_TOTAL_BYTES / 1e6:.0f} MB)")
        return 0 if sum(sizes) <= MAX_TOTAL_BYTES and max(sizes, default=0) <= MAX_FILE_BYTES else 1
    failed = []
    for entry in entries:
        start = time.monotonic()
        try:
            record = train_one(entry, args.steps or entry.steps, args.set, runs, dest, args.quiet)
        except UserError as e:
            print(f"failed {entry.name}: {e}", flush=True)
            failed.append(entry.name)
            continue
        if record["bytes"] > MAX_FILE_BYTES:
            print(f"   {entry.name} is {record['bytes'] / 1e6:.2f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB a shipped "
                  f"file may take: narrow its networks in the catalogue", flush=True)
            failed.append(entry.name)
        records_path = dest / FIGURES
        records = json.loads(records_path.read_text()) if records_path.is_file() else {}
        records[entry.name] = record
        ordered = {name: records[name] for name in [*CATALOGUE, *records] if name in records}
        records_path.write_text(json.dumps(ordered, indent=1) + "\n")
        print(f"   recorded in {records_path} ({(time.monotonic() - start) / 60:.1f} min with its figures)", flush=True)
    total = sum(p.stat().st_size for p in dest.glob("*.safetensors"))
    if total > MAX_TOTAL_BYTES:
        print(f"the files in {dest} take {total / 1e6:.1f} MB together, over the {MAX_TOTAL_BYTES / 1e6:.0f} MB allowed")
        return 1
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as e:
        print(f"train_pretrained: error: {e}", file=sys.stderr)
        sys.exit(2)
