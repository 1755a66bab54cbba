"""The colour defaults against the ones colour work started from: each noise family on openmoji at 64 px for the
same training minutes, today's code beside an earlier commit's, scored alike.

    python benchmarks/bench_recipes.py                   # the plan, no training (as `ganforge bench` runs it)
    python benchmarks/bench_recipes.py --run [--families stylegan dcgan] [--seeds 0] [--baseline REF] [--n 1000]
    python benchmarks/bench_recipes.py --render          # the README table from the results file
    python benchmarks/bench_recipes.py --run --families dcgan --arms now --set batch_size=32 \
        --results benchmarks/results/recipes_candidates.json --scratch runs/bench_recipes_candidates   # a candidate

The targets: stylegan trained for 20 minutes reaches at most half the FID that the baseline's defaults reach in the
same 20 minutes; dcgan, lsgan, wgan and wgan-gp, 10 minutes each, at most 0.6 times the baseline's, and so cgan
and acgan on a labelled colour set (mnist5k-attrs' colour digits enlarged to 64 px, labelled by digit); and no stretch
of hundreds of steps with the losses frozen at the values of a D that answers the same to everything (D's 2 ln 2
and G's ln 2 for the logistic losses, 1/4 and 1/8 for the least-squares one, D's 0 for the Wasserstein one).

Both arms read the same npz (openmoji's training split drawn at 64 px on white, or the colour digits) and train at
the same time, one thread each, so that the machine's drifting speed hits both alike (`--arms` runs one of them).
The baseline runs from a git worktree of --baseline (by default 388feb9, the last commit before colour data and
recipes), its own `ganforge train` and `ganforge sample`; each arm's final generator writes --n samples with its
own code, and this checkout scores both sets the same way: FID and KID (standard Inception) against a fixed --n of
the training images.
Results merge into benchmarks/results/recipes.json per (family, minutes, seed, arm).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "recipes.json"
BASELINE = "388feb9"
SIZE = 64
# family -> (training minutes, the largest FID ratio now / baseline the issue accepts, data); the class-conditional
# families need labels, which openmoji has none of: they train on mnist5k-attrs' colour digits with their digit labels
TARGETS = {"stylegan": (20.0, 0.5, "openmoji"), "dcgan": (10.0, 0.6, "openmoji"), "lsgan": (10.0, 0.6, "openmoji"),
           "wgan": (10.0, 0.6, "openmoji"), "wgan-gp": (10.0, 0.6, "openmoji"),
           "cgan": (10.0, 0.6, "digits"), "acgan": (10.0, 0.6, "digits")}
# "Frozen": D answers the same to everything and nothing learns, so D's and G's losses sit at their chance values
# (the losses in ganforge/losses.py). The band is one width in D's answers for every loss: each within 0.005 of
# indifference (probability 1/2 for the logistic losses, score 1/2 for the least-squares one), which moves the
# logistic D loss by 4 x 0.005 and G's by 2 x 0.005, the least-squares D loss by 0.005 and G's by 0.0025.
# A Wasserstein critic has no indifferent score: its loss is 0 when it cannot tell (within 0.02), G's has no chance value.
# loss -> (D's chance loss, band, G's chance loss or None, band)
CHANCE = {"nonsaturating": (2 * math.log(2), 0.02, math.log(2), 0.01),
          "minimax": (2 * math.log(2), 0.02, -math.log(2), 0.01),
          "lsgan": (0.25, 0.005, 0.125, 0.0025),
          "wasserstein": (0.0, 0.02, None, 0.0)}
BEGIN = "<!-- recipes: begin (written by `python benchmarks/bench_recipes.py --render` from benchmarks/results/recipes.json) -->"
END = "<!-- recipes: end -->"


def openmoji_train():
    from ganforge.data.openmoji import openmoji

    return openmoji("train", SIZE).images, None  # (N, 3, H, W) uint8 on white


def colour_digits():
    """mnist5k-attrs' 4,000 training digits (colour ink, black or grey ground) enlarged to SIZE, with the digit
    each shows (mnist5k's labels, in the same order)."""
    import torch.nn.functional as F
    from ganforge.data.attributes import mnist5k_attrs
    from ganforge.data.mnist5k import mnist5k

    images = F.interpolate(mnist5k_attrs("train").images.float(), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return images.round().clamp(0, 255).byte(), mnist5k("train").labels.numpy()


DATA = {"openmoji": (f"openmoji-train-{SIZE}.npz", openmoji_train),
        "digits": (f"mnist5k-attrs-digits-{SIZE}.npz", colour_digits)}


def write_data(folder: Path, name: str) -> Path:
    """The npz both arms train on (images, and labels where the data has them), written once."""
    file, make = DATA[name]
    path = folder / file
    if not path.is_file():
        images, labels = make()
        arrays = {"images": images.permute(0, 2, 3, 1).numpy(), **({"labels": labels} if labels is not None else {})}
        np.savez(path, **arrays)
    return path


@lru_cache(maxsize=None)
def training_set(folder: Path, name: str) -> Tuple[Path, np.ndarray]:
    """The npz a family trains on and its images, the real side of the scores (read once per data set)."""
    path = write_data(folder, name)
    with np.load(path) as d:
        return path, d["images"]


def baseline_tree(ref: str, folder: Path) -> Path:
    """A detached git worktree of `ref` (made once)."""
    tree = folder / f"baseline-{ref}"
    if not (tree / "src" / "ganforge").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), ref], cwd=ROOT, check=True,
                       capture_output=True)
    return tree


def ganforge(*args: str) -> List[str]:
    """A `ganforge` command line; which checkout runs it is env_for's PYTHONPATH."""
    return [sys.executable, "-m", "ganforge", *args]


def env_for(source: Path) -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(source / "src"), OMP_NUM_THREADS="1")


def frozen_steps(metrics: Path, loss_kind: str) -> int:
    """The longest stretch of steps over which every logged D and G loss lies in its band around chance (CHANCE)."""
    d_chance, d_band, g_chance, g_band = CHANCE[loss_kind]
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if '"train"' in line]
    longest, start = 0, None
    for row in rows:
        if abs(row["D/loss"] - d_chance) < d_band and (g_chance is None or abs(row["G/loss"] - g_chance) < g_band):
            start = row["step"] if start is None else start
            longest = max(longest, row["step"] - start)
        else:
            start = None
    return longest


def loss_kind(run: Path) -> str:
    for line in (run / "config.yaml").read_text().splitlines():
        if line.startswith("loss:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"{run}/config.yaml names no loss")


def last_step(run: Path) -> int:
    return max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.json"))


def train_pair(family: str, minutes: float, seed: int, data: Path, arms: Dict[str, Path], folder: Path,
               extra: Sequence[str]) -> Dict[str, Path]:
    """The arms' `ganforge train` at once, one thread each; their run folders."""
    runs, procs = {}, {}
    for arm, source in arms.items():
        run = folder / f"{family}-m{minutes:g}-seed{seed}-{arm_name(arm, extra).replace(' ', '_').replace('/', '-')}"
        runs[arm] = run
        if (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step_*.json")):
            print(f"[{family} {arm}] kept {run}", flush=True)
            continue
        sets = ["threads=1", *(["eval.every=0", *extra] if arm == "now" else [])]
        argv = ganforge("train", family, "--data", str(data), "--minutes", f"{minutes:g}", "--seed",
                        str(seed), "--out", str(run), "--quiet", "--set", *sets)
        print(f"[{family} {arm}] {' '.join(argv[2:])}", flush=True)
        procs[arm] = subprocess.Popen(argv, cwd=source, env=env_for(source), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
    for arm, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"[{family} {arm}] exit status {proc.returncode}:\n{out[-2000:]}")
    return runs


def arm_name(arm: str, extra: Sequence[str]) -> str:
    """'now' with --set settings is a candidate recipe, named by them."""
    return " ".join([arm, *extra]) if arm == "now" else arm


def score(family: str, arm: str, source: Path, run: Path, real: np.ndarray, n: int, seed: int) -> Dict:
    from ganforge.metrics.evaluate import evaluate_images

    samples = run / f"samples-{n}.npz"
    if not samples.is_file():
        subprocess.run(ganforge("sample", str(run), "--n", str(n), "--seed", str(seed), "--npz",
                                str(samples)), cwd=source, env=env_for(source), check=True, capture_output=True)
    with np.load(samples) as d:
        fake = d["images"]
    started = time.perf_counter()
    figures = evaluate_images(fake, real, metrics="fid,kid", seed=seed, n=n)
    meta = json.loads((run / "checkpoints" / f"step_{last_step(run):06d}.json").read_text())
    kind = loss_kind(run)
    return {"family": family, "arm": arm, "seed": seed, "steps": last_step(run),
            "train_minutes": round(meta.get("elapsed", float("nan")) / 60, 2), "fid": round(figures["fid"], 2),
            "kid": round(figures["kid"], 4), "kid_std": round(figures.get("kid_std", float("nan")), 4),
            "n": n, "loss": kind, "frozen_steps": frozen_steps(run / "metrics.jsonl", kind),
            "score_seconds": round(time.perf_counter() - started, 1)}


def merge(records: Sequence[Dict], path: Path) -> None:
    doc = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    key = lambda r: (r["family"], r["minutes"], r["seed"], r["arm"])  # noqa: E731
    merged = {key(r): r for r in doc["runs"]}
    merged.update({key(r): r for r in records})
    doc["runs"] = sorted(merged.values(), key=key)
    doc["measured_on"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one thread per arm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def render(path: Path = RESULTS) -> str:
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    if not runs:
        return "Not measured yet: `python benchmarks/bench_recipes.py --run`."
    lines = ["| family, minutes | seed | baseline: steps, FID, KID | now: steps, FID, KID | FID now / baseline "
             "(target) | longest frozen stretch, baseline / now |", "|---|---|---|---|---|---|"]
    pairs: Dict = {}
    for r in runs:
        pairs.setdefault((r["family"], r["minutes"], r["seed"]), {})[r["arm"]] = r
    for (family, minutes, seed), arms in sorted(pairs.items(), key=lambda kv: (list(TARGETS).index(kv[0][0]), kv[0])):
        if not {"baseline", "now"} <= set(arms):
            continue
        b, n = arms["baseline"], arms["now"]
        ratio = n["fid"] / b["fid"]
        target = TARGETS[family][1]
        data = "" if TARGETS[family][2] == "openmoji" else " (colour digits)"
        lines.append(f"| {family}{data}, {minutes:g} | {seed} | {b['steps']:,}, {b['fid']:.1f}, {b['kid']:.4f} | "
                     f"{n['steps']:,}, {n['fid']:.1f}, {n['kid']:.4f} | {ratio:.2f} ({target:g}, "
                     f"{'met' if ratio <= target else 'not met'}) | {b['frozen_steps']:,} / {n['frozen_steps']:,} steps |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text:
        raise SystemExit(f"README.md has no {BEGIN!r} block")
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + BEGIN + "\n" + table + "\n" + END + rest.split(END, 1)[1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="train and score (without it: the plan)")
    parser.add_argument("--render", action="store_true", help="the README table from the results file")
    parser.add_argument("--families", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--minutes", type=float, help="every family's minutes (default: each target's)")
    parser.add_argument("--arms", nargs="+", choices=["baseline", "now"], default=["baseline", "now"])
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="settings of the 'now' arm (a candidate recipe)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--baseline", default=BASELINE, help="the git commit the defaults are compared with")
    parser.add_argument("--n", type=int, default=1000, help="samples scored, and training glyphs they are scored against")
    parser.add_argument("--scratch", type=Path, default=ROOT / "runs" / "bench_recipes")
    args = parser.parse_args(argv)
    if args.render:
        write_readme(render(args.results))
        print(render(args.results))
        return 0
    total = sum(args.minutes or TARGETS[f][0] for f in args.families) * len(args.seeds)
    print(f"{len(args.families)} families x {len(args.seeds)} seeds, both arms at once: about {total:.0f} minutes "
          f"of wall time on 2 cores, plus sampling and scoring")
    if not args.run:
        print("add --run to train them")
        return 0
    args.scratch.mkdir(parents=True, exist_ok=True)
    arms = {arm: baseline_tree(args.baseline, args.scratch) if arm == "baseline" else ROOT for arm in args.arms}
    for seed in args.seeds:
        for family in args.families:
            minutes = args.minutes or TARGETS[family][0]
            data, real = training_set(args.scratch, TARGETS[family][2])
            runs = train_pair(family, minutes, seed, data, arms, args.scratch, args.set)
            records = []
            for arm, run in runs.items():
                record = score(family, arm_name(arm, args.set), arms[arm], run, real, args.n, seed)
                record.update(minutes=minutes, baseline=args.baseline, command=f"ganforge train {family} --data "
                              f"{data.name} --minutes {minutes:g} --seed {seed} --set threads=1"
                              + "".join(f" {s}" for s in (args.set if arm == "now" else [])))
                records.append(record)
                print(json.dumps(record), flush=True)
            merge(records, args.results)
    print(render(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
