"""`ganforge pretrained`: the generators that ship with ganforge, with the figures their runs measured.

    ganforge pretrained            one line each: name, family, data, image size, file size, figures
    ganforge sample pretrained:NAME   (any command that takes a run takes pretrained:NAME)
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ganforge.pretrained import CATALOGUE, FOLDER, PREFIX, shipped

# bookkeeping beside the figures in a run's last evaluation, as `ganforge train` leaves them out of its summary
_BOOKKEEPING = ("n", "n_real", "seed", "coverage_min", "coverage_max", "seconds")


def add_arguments(parser) -> None:
    parser.description = ("The pretrained generators that ship with ganforge; use one wherever a run goes, as "
                          f"{PREFIX}NAME (e.g. `ganforge sample {PREFIX}dcgan-mnist5k`).")


def describe_figures(figures: Dict) -> str:
    parts = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in _BOOKKEEPING]
    return ", ".join(parts) or "no figures recorded"


def rows(folder: Path = FOLDER) -> List[List[str]]:
    """[name, family, data, image size, file size, figures at step] of every shipped file."""
    from ganforge.training import generator_file

    out = []
    for entry in shipped(folder):
        path = entry.file(folder)
        meta = generator_file.read_meta(path)
        data = meta["data"]
        out.append([entry.name, meta["model"], entry.data, f"{data['size']} px", f"{path.stat().st_size / 1e6:.1f} MB",
                    f"{describe_figures(meta.get('figures') or {})} at step {meta['step']:,}"])
    return out


def listing(folder: Path = FOLDER) -> str:
    table = rows(folder)
    missing = [name for name in CATALOGUE if not CATALOGUE[name].file(folder).is_file()]
    lines = []
    if table:
        header = ["name", "family", "data", "size", "file", "figures"]
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header) - 1)]
        for r in [header, *table]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
        lines.append(f"use one as {PREFIX}NAME wherever a run goes: ganforge sample {PREFIX}{table[0][0]}")
    else:
        lines.append("no pretrained generators ship with this ganforge yet")
    if missing:
        lines.append(f"not shipped yet: {', '.join(missing)} (tools/train_pretrained.py in ganforge's source trains them)")
    return "\n".join(lines)


def run(args) -> int:
    print(listing())
    return 0
