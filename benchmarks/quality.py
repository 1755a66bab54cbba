"""The README's quality table, measured and rendered from one results file.

    python benchmarks/quality.py                 # train every row (hours on a CPU), then rewrite the README table
    python benchmarks/quality.py --only cgan     # one row (or several), merged into the results
    python benchmarks/quality.py --only stargan --parallel 2   # its two seeds at once, one core each
    python benchmarks/quality.py --render        # the README table from benchmarks/results/quality.json, no training
    python benchmarks/quality.py --quick         # every row for a few steps: checks the mechanism only

Every row is a step-based `ganforge train` command, run once per seed into a scratch folder (one CPU thread
unless the row says otherwise), and its end-of-run figures (the final checkpoint's "metrics", as
`ganforge train` prints them) go to benchmarks/results/quality.json, which the table is rendered from.
`--quick` writes its figures to quality.json in its scratch folder and prints its table, so it never touches real
results or the README.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "quality.json"
README = ROOT / "README.md"
BEGIN = "<!-- quality-table: begin (written by `python benchmarks/quality.py --render` from benchmarks/results/quality.json) -->"
END = "<!-- quality-table: end -->"
QUICK_STEPS = 10
QUICK_SETS = ("eval.n=100",)
# results carried over from an earlier README, not yet re-measured by this script
NOT_REMEASURED = "before-fixes"
CFD_GOAL = 20.0  # the "below 20 from step N" of a row that tracks it


Runs = List[Dict]


@dataclass(frozen=True)
class Row:
    name: str
    model: str
    steps: int
    result: Callable[[Runs, Dict], str]  # (the seeds' runs, the row's results entry) -> the table's result cell
    seeds: Tuple[int, ...] = (0,)
    args: Tuple[str, ...] = ()  # further `ganforge train` arguments, shown in the table
    sets: Tuple[str, ...] = ()  # --set items, shown in the table
    threads: Optional[int] = 1  # None: torch's own count
    before: str = ""  # shown before the command
    after: str = ""  # shown in brackets after the command, before the time taken
    reference: Optional[Callable[[], Dict]] = None  # figures of real data to show beside the run's

    def command(self) -> str:
        parts = ["ganforge", "train", self.model, *self.args, "--steps", str(self.steps)]
        if self.sets:
            parts += ["--set", *self.sets]
        return " ".join(parts)

    def argv(self, seed: int, out: Path, quick: bool) -> List[str]:
        steps = min(self.steps, QUICK_STEPS) if quick else self.steps
        sets = [*self.sets, *(QUICK_SETS if quick else ())] + ([f"threads={self.threads}"] if self.threads else [])
        argv = [sys.executable, "-m", "ganforge", "train", self.model, *self.args, "--steps", str(steps),
                "--seed", str(seed), "--out", str(out), "--quiet"]
        return argv + (["--set", *sets] if sets else [])


# --- the result cells -------------------------------------------------------------------------------

def _values(runs: Runs, key: str) -> List[float]:
    return [run["metrics"][key] for run in runs]


def _number(value: float, kind: str) -> str:
    return f"{100 * value:.1f}%" if kind == "%" else f"{value:.2f}" if kind == "2" else f"{value:.1f}"


def seeded(runs: Runs, key: str, label: str, kind: str = "1", unit: str = "") -> str:
    """'cFD 29.8 (seed 0), 27.7 (seed 1)', or 'cFD 29.8' for one run."""
    values = [_number(v, kind) + unit for v in _values(runs, key)]
    if len(runs) == 1:
        return f"{label} {values[0]}"
    return f"{label} " + ", ".join(f"{v} (seed {run['seed']})" for v, run in zip(values, runs))


def slashed(runs: Runs, key: str, label: str, kind: str = "1", unit: str = "") -> str:
    """'cFD 16.5 / 16.4': a further figure of the same seeds, in their order."""
    return f"{label} " + " / ".join(_number(v, kind) + unit for v in _values(runs, key))


def digit_share(runs: Runs) -> str:
    low, high = min(_values(runs, "coverage_min")), max(_values(runs, "coverage_max"))
    return f"every digit {100 * low:.1f}-{100 * high:.1f}% of samples"


def below_goal(runs: Runs) -> str:
    steps = [run.get("cfd_below_20_from") for run in runs]
    if any(s is None for s in steps):
        return f"not below {CFD_GOAL:g} to the end"
    return f"below {CFD_GOAL:g} from step " + " / ".join(f"{s:,}" for s in steps)


def stargan_result(runs: Runs, entry: Dict) -> str:
    ref = entry.get("reference") or {}
    held_out = runs[0]["metrics"].get("n", ref.get("n"))
    text = (f"each of the {held_out:,} held-out digits translated into every single-attribute change: the changed "
            f"attribute read as asked {seeded(runs, 'attr_acc', '', '%').strip()}, "
            f"{slashed(runs, 'attr_all', 'every attribute', '%')}, {slashed(runs, 'digit_acc', 'the digit kept', '%')}")
    if ref:
        text += (f" (the same classifiers on the real held-out images: every attribute {100 * ref['attr_all']:.1f}%, "
                 f"digit {100 * ref['digit_acc']:.1f}%)")
    return text


def stargan_reference() -> Dict:
    """What the attribute and digit classifiers read on mnist5k-attrs' real held-out images: the ceiling."""
    from ganforge.data.base import to_float
    from ganforge.data import held_out
    from ganforge.features.attribute_classifier import read_attributes
    from ganforge.metrics.digits import digit_metrics, ink

    test = held_out("mnist5k-attrs")
    x = to_float(test.images)
    attr_all = (read_attributes(x) == test.attributes).all(dim=1).float().mean()
    digit = digit_metrics(ink(x), test.labels)["accuracy"]
    return {"n": len(test), "attr_all": round(float(attr_all), 4), "digit_acc": round(float(digit), 4)}


ROWS = [
    Row("demo", "dcgan", 5045, lambda r, e: f"{seeded(r, 'cfd', 'cFD')}, {digit_share(r)}", threads=None,
        before="`make demo` by steps: ", after="default two threads"),
    Row("dcgan", "dcgan", 2700, lambda r, e: f"{seeded(r, 'cfd', 'cFD')}; {digit_share(r)}", seeds=(0, 1)),
    Row("stylegan", "stylegan", 5590, lambda r, e: f"{seeded(r, 'cfd', 'cFD')} ({below_goal(r)}), "
        f"{slashed(r, 'score', 'score', '2')}, {digit_share(r)}"),
    Row("acgan", "acgan", 3300, lambda r, e: f"{seeded(r, 'acc', 'acc', '%')}; {slashed(r, 'cfd', 'cFD')}", seeds=(0, 1)),
    Row("cgan", "cgan", 4130, lambda r, e: f"{seeded(r, 'acc', 'acc', '%')}; {slashed(r, 'cfd', 'cFD')}; {digit_share(r)}",
        seeds=(0, 1)),
    Row("wgan-gp", "wgan-gp", 2850, lambda r, e: seeded(r, "cfd", "cFD"), seeds=(0, 1)),
    # the authors' MNIST settings (the model file's paper_settings), at the same number of steps
    Row("wgan-gp-paper", "wgan-gp", 2850, lambda r, e: seeded(r, "cfd", "cFD"),
        sets=("n_critic=5", "batch_size=50", "width=64", "z_dim=128", "ema.beta=0", "optim.G.lr=1e-4",
              "optim.D.lr=1e-4", "optim.G.betas=[0.5,0.9]", "optim.D.betas=[0.5,0.9]"),
        after="the paper's settings"),
    Row("stargan", "stargan", 1500, stargan_result, seeds=(0, 1), sets=("eval.n=1000",), after="mnist5k-attrs",
        reference=stargan_reference),
    Row("pix2pix", "pix2pix", 1500, lambda r, e: f"{seeded(r, 'cfd', 'cFD')}, {slashed(r, 'acc', 'acc', '%')}",
        args=("--data", "mnist5k-edges")),
    Row("cyclegan", "cyclegan", 4000, lambda r, e: f"digits kept: {slashed(r, 'a2b_acc', '', '%').strip()} A->B, "
        f"{slashed(r, 'b2a_acc', '', '%').strip()} B->A", args=("--data", "mnist5k-colored")),
    Row("srgan", "srgan", 1200, lambda r, e: f"{slashed(r, 'psnr', 'PSNR', unit=' dB')} vs bicubic "
        f"{slashed(r, 'psnr_bicubic', '', unit=' dB').strip()}; {slashed(r, 'cfd', 'cFD')} vs "
        f"{slashed(r, 'bicubic_cfd', '').strip()}", args=("--data", "mnist5k-sr4")),
    Row("inpaint", "inpaint", 1500, lambda r, e: f"{seeded(r, 'cfd', 'cFD')}, {slashed(r, 'acc', 'acc', '%')}",
        args=("--data", "mnist5k-inpaint")),
]
BY_NAME = {row.name: row for row in ROWS}


# --- measuring --------------------------------------------------------------------------------------

def first_step_below(records: List[Dict], goal: float) -> Optional[int]:
    """The first evaluation step from which every later cFD stays below the goal; None if the last is not."""
    evals = [r for r in records if r.get("kind") == "eval" and "cfd" in r]
    step = None
    for record in evals:
        if record["cfd"] < goal:
            step = record["step"] if step is None else step
        else:
            step = None
    return step


def measure_run(row: Row, seed: int, scratch: Path, quick: bool) -> Dict:
    out = scratch / f"{row.name}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    argv = row.argv(seed, out, quick)
    print("$", " ".join(argv[1:]), flush=True)
    started = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True)
    wall = time.monotonic() - started
    last = sorted((out / "checkpoints").glob("step_*.json"))[-1]
    meta = json.loads(last.read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    metrics = {k: v for k, v in meta["metrics"].items() if k not in ("step", "hist")}
    run = {"seed": seed, "steps": meta["step"], "minutes": round(meta["elapsed"] / 60, 2),
           "wall_minutes": round(wall / 60, 2), "metrics": metrics}
    if "cfd" in metrics:
        run["cfd_below_20_from"] = first_step_below(records, CFD_GOAL)
    return run


def measure_row(row: Row, scratch: Path, quick: bool, parallel: int = 1) -> Dict:
    """The row's runs, one per seed; `parallel` of them at once (each is a process of its own, one thread each)."""
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        runs = list(pool.map(lambda seed: measure_run(row, seed, scratch, quick), row.seeds))
    entry = {"command": row.command(), "threads": row.threads, "measured_on": provenance(), "runs": runs}
    if row.reference is not None:
        entry["reference"] = row.reference()
    return entry


def provenance() -> str:
    """When, on what and from which commit the figures were measured."""
    import torch

    import ganforge

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    return (f"{time.strftime('%Y-%m-%d')}, commit {commit}{' + local changes' if dirty else ''}, "
            f"ganforge {ganforge.__version__}, torch {torch.__version__}, {platform.machine()} with "
            f"{os.cpu_count()} cores")


# --- rendering --------------------------------------------------------------------------------------

def _steps_cell(row: Row, runs: Runs) -> str:
    steps = ["not recorded" if run["steps"] is None else f"{run['steps']:,}" for run in runs]
    return steps[0] if len(set(steps)) == 1 else " / ".join(steps)


def _minutes(runs: Runs) -> str:
    minutes = [run["minutes"] for run in runs if run.get("minutes") is not None]
    if not minutes:
        return ""
    low, high = min(minutes), max(minutes)
    return f"{low:.1f} minutes" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f} minutes"


def render_row(row: Row, entry: Dict) -> str:
    runs = entry["runs"]
    brackets = ", ".join(part for part in (row.after, _minutes(runs)) if part)
    mark = " †" if entry.get("measured_on") == NOT_REMEASURED else ""
    command = f"{row.before}`{row.command()}`" + (f" ({brackets})" if brackets else "")
    note = f"; {entry['note']}" if entry.get("note") else ""
    return f"| {command} | {_steps_cell(row, runs)}{mark} | {row.result(runs, entry)}{note} |"


def render(results: Dict) -> str:
    """The table, from a results mapping {row name: entry}; rows not measured yet are left out."""
    lines = ["| command | steps | result |", "|---|---|---|"]
    lines += [render_row(row, results[row.name]) for row in ROWS if row.name in results]
    if any(entry.get("measured_on") == NOT_REMEASURED for entry in results.values()):
        lines += ["", "† carried over from before the latest training changes (some measured by time, which is why "
                  "their steps differ from the command's); `make quality` re-measures them."]
    return "\n".join(lines)


def results_path(scratch: Path, quick: bool) -> Path:
    return scratch / "quality.json" if quick else RESULTS


def load_results(path: Path = RESULTS) -> Dict:
    return json.loads(path.read_text())["rows"] if path.is_file() else {}


def save_results(results: Dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"about": "end-of-run figures of the README's quality table; `python benchmarks/quality.py` writes them",
           "rows": {row.name: results[row.name] for row in ROWS if row.name in results}}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def readme_table(text: str) -> str:
    """The part of the README between the table's markers."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        end = text.index(END, start)
    except ValueError:
        raise SystemExit(f"{README}: the quality table's markers are missing ({BEGIN} ... {END})") from None
    return text[start:end].strip("\n")


def write_readme(table: str) -> None:
    text = README.read_text()
    old = readme_table(text)
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    README.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    print(f"{README.name}: quality table {'unchanged' if old == table else 'rewritten'}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(BY_NAME), help="the rows to run")
    parser.add_argument("--render", action="store_true", help="rewrite the README table from the results, no training")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps a row, results in the scratch folder")
    parser.add_argument("--scratch", type=Path, default=ROOT / "runs" / "quality", help="where the runs go")
    parser.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="run a row's seeds N at a time (the machine's cores: 2 here)")
    args = parser.parse_args(argv)
    if args.render:
        write_readme(render(load_results()))
        return 0
    scratch = args.scratch / ("quick" if args.quick else "full")
    path = results_path(scratch, args.quick)
    results = load_results(path)
    rows = [BY_NAME[name] for name in args.only] if args.only else ROWS
    failed = []
    for row in rows:
        try:
            results[row.name] = measure_row(row, scratch, args.quick, args.parallel)
        except (subprocess.CalledProcessError, OSError, ValueError, KeyError, IndexError) as e:
            failed.append(row.name)  # the other rows still run; this one keeps its earlier results
            print(f"{row.name}: no figures ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
            continue
        save_results(results, path)  # after every row: an interrupted run keeps what it measured
        print(render_row(row, results[row.name]), flush=True)
    if args.quick:
        print(render(results))
    else:
        write_readme(render(load_results()))
    if failed:
        print(f"rows without new figures: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
