"""What a run shows and leaves behind: the progress bar, metrics.jsonl and losses.png."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from tqdm import tqdm

UNBOUNDED_STEPS = 10**9  # the step limit of a run that only its time budget ends


class Progress:
    """One line: step, losses, img/s and what is left, by steps, or by the wall-clock budget when there is one
    (the bar then fills with time, and a step limit that comes first shows as step N/M)."""

    def __init__(self, steps: int, start_step: int, minutes: Optional[float], enabled: bool = True):
        self.steps, self.budget = steps, minutes * 60 if minutes else None
        self.t0 = time.monotonic()
        if self.budget:
            total, initial = max(1, round(self.budget)), 0
            bar_format = "{l_bar}{bar}| [{elapsed} of " + f"{minutes:g} min" + "{postfix}]"
        else:
            total, initial = steps, start_step
            bar_format = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                        bar_format=bar_format, desc="train")

    def update(self, step: int, logs: Dict[str, float], images_per_second: float) -> None:
        parts = [f"{k}={v:.3f}" for k, v in logs.items()]
        parts.append(f"{images_per_second:.0f} img/s")
        if self.budget:
            self.bar.n = min(self.bar.total, round(time.monotonic() - self.t0))
            parts.insert(0, f"step {step}" if self.steps >= UNBOUNDED_STEPS else f"step {step}/{self.steps}")
        else:
            self.bar.n = step
        self.bar.set_postfix_str(" ".join(parts), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class MetricsLog:
    """Append-only JSON lines: one record per log interval (losses) or evaluation (quality figures)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, record: Dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> List[Dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """On resume, drop records past the checkpoint so the log reads like one uninterrupted run."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def plot_losses(records: List[Dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss_rows = [r for r in records if r.get("kind") == "train"]
    eval_rows = [r for r in records if r.get("kind") == "eval"]
    keys = sorted({k for r in loss_rows for k in r if "/" in k})
    # the quality panel: distances (lower is better) when the run has them, else its shares in [0, 1]
    distances = [k for k in ("cfd", "fid") if any(k in r for r in eval_rows)]
    shares = sorted({k for r in eval_rows for k, v in r.items() if k not in ("step", "n") and isinstance(v, float) and 0 <= v <= 1})
    quality = distances or shares
    augment_rows = [r for r in loss_rows if "augment_p" in r]  # adaptive augmentation's p (and r_t)
    panels = 1 + bool(quality) + bool(augment_rows)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    for key in keys:
        rows = [r for r in loss_rows if key in r]
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=key, linewidth=1)
    ax.set_xlabel("generator step")
    ax.set_title("losses")
    if keys:
        ax.legend(fontsize=8)
    if quality:
        ax = axes[0][1]
        for key in quality:
            rows = [r for r in eval_rows if key in r]
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o", label=key)
        ax.set_xlabel("generator step")
        if distances:
            ax.set_yscale("log")
            ax.set_title("quality (lower is better)")
        else:
            ax.set_title("quality (higher is better)")
        ax.legend(fontsize=8)
    if augment_rows:
        ax = axes[0][panels - 1]
        ax.plot([r["step"] for r in augment_rows], [r["augment_p"] for r in augment_rows], label="p")
        rt_rows = [r for r in augment_rows if "augment_rt" in r]
        if rt_rows:
            ax.plot([r["step"] for r in rt_rows], [r["augment_rt"] for r in rt_rows], label="r_t = E[sign D(real)]", linewidth=1)
        ax.set_xlabel("generator step")
        ax.set_title("adaptive augmentation")
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
