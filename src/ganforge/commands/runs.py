"""`ganforge runs [DIR]`: a table of the runs under a folder, read from their files alone (config.yaml, metrics.jsonl,
the checkpoints' names and sidecars); nothing is loaded into torch. `find_runs` gives the rows to tests and pages.

A damaged run folder (a corrupt line in metrics.jsonl, no config.yaml, an unreadable sidecar) gives the row it can,
with what is missing named in its notes.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ganforge.errors import UserError

# The run's main figure: the first of these its evaluations hold, with whether lower is better. Distances first (FID
# on colour data, cFD on digits, bare for a sampling family or a single translation set), then a translation
# family's named sets (a2b_cfd), its pixel fidelity, its attribute or digit accuracy.
MAIN_FIGURES: Tuple[Tuple[str, bool], ...] = (
    ("fid", True), ("cfd", True), ("*_fid", True), ("*_cfd", True), ("psnr", False), ("psnr_*", False),
    ("*_acc", False), ("acc", False), ("l1", True), ("kid", True), ("score", False),
)
# reference figures beside a model's own (the bicubic baseline, the untouched inputs): never its main figure
_BASELINES = ("*bicubic*", "*_input")
SORTS = ("folder", "figure", "steps", "time")
_CHECKPOINT = re.compile(r"step_(\d+)\.json$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("A table of the runs under a folder (searched recursively): model, data, steps done, the best "
                          "and the last of each run's main quality figure, training minutes and the folder.")
    parser.add_argument("dir", nargs="?", default="runs", help="the folder to search (default: runs)")
    parser.add_argument("--sort", choices=SORTS, default="folder",
                        help="folder (default); figure: best first within each figure; steps, time: most first")


def run(args) -> int:
    rows = find_runs(args.dir, sort=args.sort)
    if not rows:
        print(f"no runs under {args.dir} (a run folder holds config.yaml, metrics.jsonl or checkpoints/)")
        return 0
    print(format_table(rows))
    return 0


def find_runs(folder, sort: str = "folder") -> List[Dict]:
    """One row per run folder under `folder` (the folder itself included): see `read_run` for its keys."""
    root = Path(folder)
    if not root.exists():
        raise UserError(f"no folder '{folder}' to list runs in")
    if not root.is_dir():
        raise UserError(f"'{folder}' is a file: give the folder that holds the runs")
    if sort not in SORTS:
        raise UserError(f"--sort must be one of {', '.join(SORTS)}, got '{sort}'")
    return sort_rows([read_run(path) for path in _run_folders(root)], sort)


def _run_folders(root: Path) -> List[Path]:
    found = []
    for here, subfolders, files in os.walk(root, onerror=lambda e: None):  # an unreadable folder is passed over
        path = Path(here)
        if _is_run(path, files, subfolders):
            found.append(path)
            subfolders.clear()  # a run's samples/ and checkpoints/ hold no runs
        else:
            subfolders.sort()
    return sorted(found)


def _is_run(path: Path, files: List[str], subfolders: List[str]) -> bool:
    if "config.yaml" in files or "metrics.jsonl" in files:
        return True
    return "checkpoints" in subfolders and any(_CHECKPOINT.search(name) for name in _listing(path / "checkpoints"))


def _listing(folder: Path) -> List[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def read_run(folder) -> Dict:
    """A run folder's row: folder, model, data, steps (done), minutes (of training), figure (the main figure's name,
    or None), lower_is_better, best and best_step, last and last_step, and notes (what could not be read)."""
    folder = Path(folder)
    notes: List[str] = []
    records = _read_metrics(folder / "metrics.jsonl", notes)
    checkpoint_step, sidecar = _newest_checkpoint(folder, notes)
    config = _read_config(folder / "config.yaml", notes)
    if config is None and sidecar is not None and isinstance(sidecar.get("config"), dict):
        config = sidecar["config"]  # the newest checkpoint records the run's config too
    model = (config or {}).get("model") or (sidecar or {}).get("model")
    data = (config or {}).get("data")

    seen = [r["step"] for r in records] + ([checkpoint_step] if checkpoint_step is not None else [])
    # a run that has logged nothing yet has done 0 steps; one whose metrics.jsonl is gone, an unknown number
    steps = max(seen) if seen else (0 if (folder / "metrics.jsonl").is_file() else None)
    train = [r for r in records if r.get("kind") == "train" and _finite(r.get("time"))]
    minutes = train[-1]["time"] / 60 if train else None
    if sidecar is not None and _finite(sidecar.get("elapsed")) and (not train or checkpoint_step >= train[-1]["step"]):
        minutes = sidecar["elapsed"] / 60

    row = {"folder": str(folder), "model": model if isinstance(model, str) else None,
           "data": data if isinstance(data, str) else None, "steps": steps, "minutes": minutes, "figure": None,
           "lower_is_better": None, "best": None, "best_step": None, "last": None, "last_step": None, "notes": notes}
    evals = [r for r in records if r.get("kind") == "eval"]
    chosen = main_figure(evals)
    if chosen:
        name, lower = chosen
        points = [(r["step"], float(r[name])) for r in evals if _finite(r.get(name))]
        best = (min if lower else max)(points, key=lambda point: point[1])
        row.update(figure=name, lower_is_better=lower, best=best[1], best_step=best[0], last=points[-1][1],
                   last_step=points[-1][0])
    if row["model"] is None:
        notes.append("model unknown")
    return row


def main_figure(evals: List[Dict]) -> Optional[Tuple[str, bool]]:
    """(name, lower is better) of the first of MAIN_FIGURES that the evaluation records hold a finite value of."""
    names = {k for r in evals for k, v in r.items() if _finite(v) and k not in ("step", "n", "n_real", "seed", "seconds")}
    names = {n for n in names if not any(fnmatch.fnmatchcase(n, b) for b in _BASELINES)}
    for pattern, lower in MAIN_FIGURES:
        # a set's own figure before its cycle reconstruction (psnr_a2b before psnr_cycle_x)
        matches = sorted((n for n in names if fnmatch.fnmatchcase(n, pattern)), key=lambda n: ("cycle" in n, n))
        if matches:
            return matches[0], lower
    return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_metrics(path: Path, notes: List[str]) -> List[Dict]:
    if not path.is_file():
        notes.append("no metrics.jsonl")
        return []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        notes.append(f"metrics.jsonl unreadable ({e.strerror or e})")
        return []
    records, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and not isinstance(record["step"], bool):
            records.append(record)
        else:
            bad += 1
    if bad:
        notes.append(f"metrics.jsonl: {bad} unreadable line{'s' if bad > 1 else ''} skipped")
    return records


def _read_config(path: Path, notes: List[str]) -> Optional[Dict]:
    import yaml

    if not path.is_file():
        notes.append("no config.yaml")
        return None
    try:
        config = yaml.safe_load(path.read_bytes().decode("utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        config = None
    if not isinstance(config, dict):
        notes.append("config.yaml unreadable")
        return None
    return config


def _newest_checkpoint(folder: Path, notes: List[str]) -> Tuple[Optional[int], Optional[Dict]]:
    """The newest checkpoint's step (from its name) and its sidecar, or None where it cannot be read."""
    found = sorted((int(m.group(1)), name) for name in _listing(folder / "checkpoints") if (m := _CHECKPOINT.search(name)))
    if not found:
        return None, None
    step, name = found[-1]
    try:
        sidecar = json.loads((folder / "checkpoints" / name).read_bytes())
    except (OSError, ValueError):
        notes.append(f"checkpoints/{name} unreadable")
        return step, None
    return step, sidecar if isinstance(sidecar, dict) else None


def sort_rows(rows: List[Dict], by: str) -> List[Dict]:
    if by == "steps":
        return sorted(rows, key=lambda r: (r["steps"] is None, -(r["steps"] or 0), r["folder"]))
    if by == "time":
        return sorted(rows, key=lambda r: (r["minutes"] is None, -(r["minutes"] or 0.0), r["folder"]))
    if by == "figure":  # runs of one figure together, the best first; runs without a figure last
        return sorted(rows, key=lambda r: (r["figure"] is None, r["figure"] or "",
                                           (r["best"] if r["lower_is_better"] else -r["best"]) if r["figure"] else 0.0,
                                           r["folder"]))
    return sorted(rows, key=lambda r: r["folder"])


def format_table(rows: List[Dict]) -> str:
    """The rows as aligned text columns; '?' where a value could not be read, '-' where the run has none yet."""
    def figure(value, step) -> str:
        return "-" if value is None else f"{value:.4g} @{step}"

    header = ["model", "data", "steps", "figure", "best", "last", "minutes", "folder", "notes"]
    table = [header]
    for r in rows:
        table.append([
            r["model"] or "?", r["data"] or "?", "?" if r["steps"] is None else str(r["steps"]),
            "-" if r["figure"] is None else f"{r['figure']} ({'lower' if r['lower_is_better'] else 'higher'} is better)",
            figure(r["best"], r["best_step"]), figure(r["last"], r["last_step"]),
            "?" if r["minutes"] is None else f"{r['minutes']:.1f}", r["folder"], "; ".join(r["notes"]),
        ])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)
