"""Quality per CPU-minute: each noise family trained for a ladder of CPU budgets, its end-of-run figures per rung.

    python benchmarks/bench_quality.py                        # the plan and its estimated CPU time, no training
    python benchmarks/bench_quality.py --run --parallel 2     # the whole ladder (many hours), then the README table
    python benchmarks/bench_quality.py --run --data openmoji --families dcgan --minutes 2 5 --seeds 0
    python benchmarks/bench_quality.py --render               # table and plot from the results file, no training
    python benchmarks/bench_quality.py --quick                # every rung for a few steps: checks the mechanism only

Families dcgan, lsgan, wgan, wgan-gp and stylegan on mnist5k (cFD of 2,500 samples) and on openmoji at 64 px
(FID and KID of 500 samples against 500 training images); cgan and acgan on mnist5k only, as a family that needs
labels runs only on data that has them. Every rung is a `ganforge train` process on one thread at the default
settings bar `eval.every=0` (periodic figures would fall at steps, not at rungs): the figures come once, at the end
of the rung, from the final checkpoint's "metrics".

One run per (family, data, seed), continued rung by rung: the 5-minute rung is the 2-minute rung's run resumed
with `--resume --minutes 3` (less what the 2-minute rung overran; `--minutes` counts training only, and a resumed
run adds its training time to the checkpoint's). The trainer evaluates by steps, never at a time, so one long run
cannot be read at 2, 5, 10 and 20 minutes; but a resumed run equals the uninterrupted one bit for bit
(tests/test_resume_every_model.py), so the chain is that run stopped and evaluated at each rung, for the largest
budget's CPU time rather than the sum of all the rungs'. A `--minutes` selection chains only the rungs it names
(one rung alone is a fresh run of its budget). Evaluation is logged beside the training minutes, not in them.

Without --run (as `ganforge bench` runs every benchmark) the script prints its plan and trains nothing: the whole
ladder takes hours. Results go to benchmarks/results/bench_quality.json, merged per (family, data, minutes, seed)
so that partial runs accumulate; the README's table and docs/quality_per_minute.png are rendered from that file.
`--quick` trains each rung for a few steps into its scratch folder and writes its results, table and plot there.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_quality.json"
README = ROOT / "README.md"
PLOT = ROOT / "docs" / "quality_per_minute.png"
BEGIN = "<!-- quality-per-minute: begin (written by `python benchmarks/bench_quality.py --render` from benchmarks/results/bench_quality.json) -->"
END = "<!-- quality-per-minute: end -->"

FAMILIES = ("dcgan", "lsgan", "wgan", "wgan-gp", "stylegan", "cgan", "acgan")
MINUTES = (2.0, 5.0, 10.0, 20.0)
SEEDS = (0, 1)
SETS = ("threads=1", "eval.every=0")  # one thread a run; the figures once, at the end of each rung
QUICK_STEPS = 3  # --quick: rung i of the ladder ends at QUICK_STEPS * (i + 1) steps
QUICK_SETS = ("eval.n=8",)
STARTUP_MINUTES = 0.2  # a `ganforge train` process before its first step: imports, data, networks


@dataclass(frozen=True)
class Data:
    sets: Tuple[str, ...]
    figures: Tuple[Tuple[str, str, str], ...]  # (metric key, label, format); the first is plotted
    against: str  # what the samples are compared with; "{n_real}" is filled in from the figures
    eval_minutes: float  # one end-of-rung evaluation on one core, for the estimate

    def about(self, families: Dict) -> str:
        """'cFD of 2,500 samples against ...', with the sample counts the figures were measured on."""
        runs = [run for by_minutes in families.values() for rs in by_minutes.values() for run in rs]
        counts = {key: _counts([run["metrics"].get(key) for run in runs]) for key in ("n", "n_real")}
        labels = " and ".join(label for _, label, _ in self.figures)
        return f"{labels} of {counts['n']} samples against " + self.against.format(n_real=counts["n_real"])


def _counts(values: List[Optional[int]]) -> str:
    found = sorted({v for v in values if v is not None})
    return " / ".join(f"{v:,}" for v in found) or "?"


DATA = {
    "mnist5k": Data((), (("cfd", "cFD", "{:.1f}"),), "the 1,000 held-out digits", 0.1),
    # 500 samples through the Inception network at ~0.1 s an image, with room for a loaded machine (the real
    # images' features are computed once per data set and size, then cached)
    "openmoji": Data(("size=64",), (("fid", "FID", "{:.1f}"), ("kid", "KID", "{:.4f}")),
                     "{n_real} training images, 64 px", 1.5),
}


def runs_on(family: str, data: str) -> bool:
    """Whether the data gives what the family declares it needs (a class-conditional family needs labels)."""
    from ganforge.data.catalogue import CATALOGUE, Kind
    from ganforge.models import get_model

    needs = get_model(family).needs
    return needs == Kind.IMAGES or CATALOGUE[data].kind == needs


@dataclass(frozen=True)
class Chain:
    """The rungs of one run: (family, data, seed), continued from each rung's budget to the next's."""
    family: str
    data: str
    seed: int
    minutes: Tuple[float, ...]  # ascending

    @property
    def name(self) -> str:
        return f"{self.family}-{self.data}-seed{self.seed}"


def plan(families: Sequence[str], data: Sequence[str], minutes: Sequence[float], seeds: Sequence[int]) -> List[Chain]:
    rungs = tuple(sorted(set(minutes)))
    return [Chain(f, d, s, rungs) for d in data for f in families if runs_on(f, d) for s in seeds]


def estimate_minutes(chains: Sequence[Chain]) -> float:
    """CPU minutes of the chains: the largest budget trained, plus a start and an evaluation per rung."""
    return sum(max(c.minutes) + len(c.minutes) * (STARTUP_MINUTES + DATA[c.data].eval_minutes) for c in chains)


def fmt_minutes(minutes: float) -> str:
    return f"{minutes / 60:.1f} hours" if minutes >= 90 else f"{minutes:.0f} minutes"


# --- measuring --------------------------------------------------------------------------------------

def _number(minutes: float) -> str:
    return f"{minutes:g}"


def budget(chain: Chain, rung: int, trained: float, quick: bool) -> List[str]:
    """A rung's `ganforge train` budget, `trained` minutes into the run: what is left to the rung's minutes."""
    if quick:
        return ["--steps", str(QUICK_STEPS * (rung + 1))]
    return ["--minutes", f"{max(chain.minutes[rung] - trained, 0.01):.4f}"]


def segment_argv(chain: Chain, rung: int, out: Path, limit: List[str], quick: bool, extra: Sequence[str]) -> List[str]:
    """The `ganforge train` command of a chain's rung (resuming the run after the first rung)."""
    sets = [*SETS, *DATA[chain.data].sets, *(QUICK_SETS if quick else ()), *extra]
    return [sys.executable, "-m", "ganforge", "train", chain.family, "--data", chain.data, *limit,
            "--seed", str(chain.seed), "--out", str(out), "--quiet", *(["--resume"] if rung else []), "--set", *sets]


def straight_command(chain: Chain, rung: int, quick: bool, extra: Sequence[str]) -> str:
    """The uninterrupted command that a rung's chain equals."""
    limit = budget(chain, rung, 0.0, quick)
    sets = [*SETS, *DATA[chain.data].sets, *(QUICK_SETS if quick else ()), *extra]
    return " ".join(["ganforge", "train", chain.family, "--data", chain.data, limit[0], f"{float(limit[1]):g}",
                     "--seed", str(chain.seed), "--set", *sets])


def run_chain(chain: Chain, scratch: Path, quick: bool, extra: Sequence[str], store: "Store") -> Optional[str]:
    """Trains the chain's rungs in turn, storing each rung's figures as it ends; what failed, if a rung did."""
    out = scratch / chain.name
    shutil.rmtree(out, ignore_errors=True)
    trained = 0.0
    for rung, minutes in enumerate(chain.minutes):
        limit = budget(chain, rung, trained, quick)
        argv = segment_argv(chain, rung, out, limit, quick, extra)
        print(f"$ {' '.join(argv[2:])}", flush=True)
        started = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        print(f"[{chain.name}, {_number(minutes)} min] " + (done.stdout + done.stderr).strip(), flush=True)
        if done.returncode:
            return f"{chain.name} at {_number(minutes)} minutes: exit status {done.returncode}"
        try:
            meta = json.loads(sorted((out / "checkpoints").glob("step_*.json"))[-1].read_text())
            trained = meta["elapsed"] / 60
            metrics = {k: v for k, v in meta["metrics"].items() if k not in ("step", "hist")}
        except (OSError, ValueError, KeyError, IndexError) as e:
            return f"{chain.name} at {_number(minutes)} minutes: no figures ({type(e).__name__}: {e})"
        store.add({"family": chain.family, "data": chain.data, "minutes": minutes, "seed": chain.seed,
                   "budget": " ".join(limit), "resumed_from": chain.minutes[rung - 1] if rung else None,
                   "steps": meta["step"], "training_minutes": round(trained, 3),
                   "eval_seconds": metrics.pop("seconds", None), "wall_minutes": round(wall / 60, 2),
                   "command": straight_command(chain, rung, quick, extra), "measured_on": store.measured_on,
                   "metrics": metrics})
    return None


def key(entry: Dict) -> Tuple:
    return entry["family"], entry["data"], float(entry["minutes"]), entry["seed"]


def order(entry: Dict) -> Tuple:
    family, data, minutes, seed = key(entry)
    return list(DATA).index(data), FAMILIES.index(family), minutes, seed


def load_results(path: Path = RESULTS) -> List[Dict]:
    return json.loads(path.read_text())["runs"] if path.is_file() else []


class Store:
    """The results file: each rung's entry merged in as it ends (re-read first, so that invocations that run
    at once keep each other's rungs), written to a temporary name and renamed."""

    def __init__(self, path: Path, measured_on: str):
        self.path, self.measured_on, self.lock = path, measured_on, threading.Lock()

    def add(self, entry: Dict) -> None:
        with self.lock:
            merged = {key(e): e for e in load_results(self.path)}
            merged[key(entry)] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            doc = {"about": "end-of-run figures of each family after a ladder of CPU budgets; "
                            "`python benchmarks/bench_quality.py` writes them",
                   "runs": sorted(merged.values(), key=order)}
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
            os.replace(tmp, self.path)


# --- rendering --------------------------------------------------------------------------------------

def grouped(results: List[Dict]) -> Dict[str, Dict[str, Dict[float, List[Dict]]]]:
    """{data: {family: {minutes: [runs, by seed]}}}, in the ladder's order."""
    out: Dict = {}
    for entry in sorted(results, key=order):
        by_minutes = out.setdefault(entry["data"], {}).setdefault(entry["family"], {})
        by_minutes.setdefault(float(entry["minutes"]), []).append(entry)
    return out


def _cell(runs: List[Dict], metric: str, form: str, steps: bool) -> str:
    text = " / ".join(form.format(run["metrics"][metric]) if metric in run["metrics"] else "-" for run in runs)
    if steps:
        text += "<br><sub>" + " / ".join(f"{run['steps']:,}" for run in runs) + " steps</sub>"
    return text


def _span(values: List[float], scale: float, form: str) -> str:
    """'1-2', or '3' where the lowest and highest read the same."""
    low, high = format(scale * min(values), form), format(scale * max(values), form)
    return low if low == high else f"{low}-{high}"


def render_table(results: List[Dict]) -> str:
    """The markdown tables, one per data set, with the plot's link; a sentence saying so when nothing is measured."""
    if not results:
        return ("Not measured yet: `python benchmarks/bench_quality.py --run` trains the ladder (the command alone "
                "prints its plan and estimated CPU time), and `--render` writes the table and the plot here.")
    parts = [f"![quality per CPU-minute]({PLOT.relative_to(ROOT).as_posix()})"]
    for data, families in grouped(results).items():
        spec = DATA[data]
        rungs = sorted({m for by_minutes in families.values() for m in by_minutes})
        seeds = sorted({run["seed"] for by_minutes in families.values() for runs in by_minutes.values() for run in runs})
        parts.append(f"**{data}**: {spec.about(families)}; lower is better; seed {' / '.join(map(str, seeds))} "
                     f"and the steps reached.")
        lines = ["| family | figure | " + " | ".join(f"{_number(m)} min" for m in rungs) + " |",
                 "|---|---|" + "---|" * len(rungs)]
        for family, by_minutes in families.items():
            for i, (metric, label, form) in enumerate(spec.figures):
                cells = [_cell(by_minutes[m], metric, form, steps=i == len(spec.figures) - 1) if m in by_minutes else ""
                         for m in rungs]
                lines.append(f"| {family} | {label} | " + " | ".join(cells) + " |")
        runs = [run for by_minutes in families.values() for rs in by_minutes.values() for run in rs]
        seconds = [run["eval_seconds"] for run in runs if run.get("eval_seconds") is not None]
        share = [run["training_minutes"] / run["minutes"] for run in runs if run["budget"].startswith("--minutes")]
        note = " ".join(([f"Each rung trained {_span(share, 100, '.1f')}% of its minutes."] if share else [])
                        + ([f"An evaluation took {_span(seconds, 1, '.0f')} s, not counted in the training minutes."]
                           if seconds else []))
        parts.append("\n".join(lines) + ("\n\n" + note if note else ""))
    return "\n\n".join(parts)


def plot(results: List[Dict], path: Path) -> None:
    """The first figure of each data set against training minutes: one line per family (the seeds' mean through
    the seeds' points), one panel per data set, a family's colour the same in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    groups = grouped(results)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, (data, families) in zip(axes[0], groups.items()):
        metric, label, _ = DATA[data].figures[0]
        values = []
        for family, by_minutes in families.items():
            colour = f"C{FAMILIES.index(family)}"
            xs, ys = [], []
            for runs in by_minutes.values():
                points = [(run["training_minutes"], run["metrics"][metric]) for run in runs if metric in run["metrics"]]
                if not points:
                    continue
                ax.scatter([p[0] for p in points], [p[1] for p in points], s=12, color=colour, alpha=0.5)
                xs.append(sum(p[0] for p in points) / len(points))
                ys.append(sum(p[1] for p in points) / len(points))
                values += [p[1] for p in points]
            ax.plot(xs, ys, marker="o", color=colour, label=family)
        ax.set_xscale("log")
        if values and min(values) > 0 and max(values) / min(values) > 3:  # cFD and FID span orders of magnitude
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        rungs = sorted({run["minutes"] for by_minutes in families.values() for rs in by_minutes.values() for run in rs
                        if run["budget"].startswith("--minutes")})
        if rungs:
            ax.set_xticks(rungs)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training minutes (one CPU thread)")
        ax.set_ylabel(f"{label} (lower is better)")
        ax.set_title(data)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def readme_block(text: str) -> str:
    """The part of the README between the markers."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        end = text.index(END, start)
    except ValueError:
        raise SystemExit(f"{README}: the quality-per-minute markers are missing ({BEGIN} ... {END})") from None
    return text[start:end].strip("\n")


def write_readme(block: str) -> None:
    text = README.read_text()
    old = readme_block(text)
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    README.write_text(text[:start] + "\n" + block + "\n" + text[end:])
    print(f"{README.name}: quality per minute {'unchanged' if old == block else 'rewritten'}")


def render_all(results: List[Dict], table_to: Optional[Path], plot_to: Path) -> None:
    """The table (into the README, or a markdown file) and the plot, if there are results to plot."""
    table = render_table(results)
    if table_to is None:
        write_readme(table)
    else:
        table_to.write_text(table + "\n")
        print(table)
    if results:
        plot(results, plot_to)
        print(f"plot: {plot_to}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="train the ladder (without it: the plan and its estimate)")
    parser.add_argument("--quick", action="store_true", help=f"rung i trains to {QUICK_STEPS} x (i + 1) steps; "
                        "results, table and plot in the scratch folder")
    parser.add_argument("--render", action="store_true", help="the README table and plot from the results, no training")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--minutes", nargs="+", type=float, default=list(MINUTES), help="the rungs' training budgets")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--parallel", type=int, default=1, help="runs at once, one thread each")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="further settings for every run")
    parser.add_argument("--scratch", type=Path, default=ROOT / "runs" / "bench_quality", help="where the runs go")
    args = parser.parse_args(argv)
    if args.render:
        render_all(load_results(), None, PLOT)
        return 0
    if any(m <= 0 for m in args.minutes) or args.parallel < 1:
        parser.error("--minutes must be positive and --parallel at least 1")
    chains = plan(args.families, args.data, args.minutes, args.seeds)
    cpu = estimate_minutes(chains)
    print(f"{len(chains)} runs of {sum(len(c.minutes) for c in chains)} rungs "
          f"({', '.join(_number(m) for m in chains[0].minutes) if chains else 'none'} minutes): about {fmt_minutes(cpu)} "
          f"of CPU time, {fmt_minutes(cpu / args.parallel)} with {args.parallel} at once (each rung a run of its own "
          f"would train {fmt_minutes(sum(sum(c.minutes) for c in chains))})"
          + (f"; --quick trains rung i to {QUICK_STEPS} x (i + 1) steps instead" if args.quick else ""), flush=True)
    if not (args.run or args.quick):
        print("add --run to train them, or --quick to check the mechanism in a few steps")
        return 0
    from quality import provenance  # benchmarks/quality.py: when, on what and from which commit

    scratch = args.scratch / ("quick" if args.quick else "full")
    path = scratch / RESULTS.name if args.quick else RESULTS
    store = Store(path, provenance())
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        failed = [e for e in pool.map(lambda c: run_chain(c, scratch, args.quick, args.set, store), chains) if e]
    if args.quick:
        render_all(load_results(path), scratch / "bench_quality.md", scratch / PLOT.name)
    else:
        render_all(load_results(), None, PLOT)
    for error in failed:  # the other chains still ran; this one stopped at the rung that failed
        print(f"no figures from {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
