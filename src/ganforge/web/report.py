"""A run's report for the page, read from its files alone (no model runs): loss and quality series, the latest
figures and the sample grids saved as training went."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Dict, List, Optional

from ganforge.web.validation import HTTPError

QUALITY_KEYS = ("cfd", "fid", "kid", "acc", "score")


def run_folder(sidecar: Path) -> Optional[Path]:
    """The run folder a checkpoint belongs to (RUN/checkpoints/step_N.json), when it has a report."""
    if sidecar.parent.name != "checkpoints":
        return None
    run = sidecar.parent.parent
    return run if (run / "metrics.jsonl").is_file() or (run / "samples").is_dir() else None


def report(entry) -> Dict:
    """The report of an Entry's run folder."""
    if entry.run is None:
        raise HTTPError(404, f"{entry.name} was loaded from a lone checkpoint: no run folder, no report")
    records = read_jsonl(entry.run / "metrics.jsonl")
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    loss_keys = sorted({k for r in train for k in r if "/" in k})
    eval_keys = [k for k in QUALITY_KEYS if any(k in r for r in evals)]
    cfg = entry.generator.cfg
    return {
        "name": entry.name,
        "losses": {k: thin([[r["step"], r[k]] for r in train if isinstance(r.get(k), (int, float))]) for k in loss_keys},
        "quality": {k: [[r["step"], r[k]] for r in evals if isinstance(r.get(k), (int, float))] for k in eval_keys},
        "latest": {"train": train[-1] if train else None, "eval": evals[-1] if evals else None},
        "samples": sample_steps(entry.run),
        "config": {"model": entry.generator.meta["model"], "data": cfg.get("data"), "batch_size": cfg.get("batch_size"),
                   "loss": cfg.get("loss"), "checkpoint_step": entry.generator.step},
    }


def sample_png(entry, step: str) -> bytes:
    """The sample grid an Entry's run saved at `step` (digits only, so no path leaves the run's samples/)."""
    if entry.run is None or not step.isdigit():
        raise HTTPError(404, "no such sample grid")
    path = entry.run / "samples" / f"step_{int(step):06d}.png"
    if not path.is_file():
        raise HTTPError(404, f"{entry.name} saved no samples at step {int(step)}")
    return path.read_bytes()


def read_jsonl(path: Path) -> List[Dict]:
    """The records of a metrics.jsonl; a line a running trainer is still writing is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def thin(points: List, most: int = 400) -> List:
    """At most `most` points, evenly spaced, the last one kept: a long run still draws quickly."""
    if len(points) <= most:
        return points
    stride = math.ceil(len(points) / most)
    kept = points[::stride]
    return kept if kept[-1] is points[-1] else kept + [points[-1]]


def sample_steps(run: Path) -> List[int]:
    folder = run / "samples"
    if not folder.is_dir():
        return []
    steps = [int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"step_(\d+)\.png", p.name))]
    return sorted(steps)
