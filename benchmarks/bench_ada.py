"""Adaptive discriminator augmentation on a small colour set: StyleGAN at 64 px on a few hundred emoji, with and
without ADA, for the same training minutes (Karras et al. 2020, whose gain grows as the data set shrinks).

    python benchmarks/bench_ada.py                    # the plan, no training (as `ganforge bench` runs it)
    python benchmarks/bench_ada.py --run [--minutes 20] [--subset 500] [--seeds 0] [--n 1000]

For each seed, --subset glyphs are drawn (seeded) from openmoji's training split and written to an npz; stylegan
trains on that npz alone at 64 px on one thread for --minutes of training (`--minutes` counts training only, so
evaluation stays outside the budget), once as its defaults are and once with `--set augment.policy=ada`. Each
final generator is scored by FID and KID of --n samples against --n glyphs of the whole training split (standard
Inception): what the figure rewards is covering the emoji, not copying the few hundred seen. The target: ADA
lowers FID on the 500-glyph subset by at least 25% at equal time. Results merge into
benchmarks/results/ada.json per (subset, minutes, seed, arm).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Dict

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "ada.json"
ARMS = {"defaults": [], "ada": ["augment.policy=ada"]}
SIZE = 64


def write_subset(folder: Path, subset: int, seed: int) -> Path:
    """`subset` glyphs of openmoji's training split, drawn with `seed` -> an npz of images (N, H, W, C) uint8."""
    import torch

    from ganforge.data.openmoji import openmoji

    images = openmoji("train", SIZE).images  # (N, 3, H, W) uint8 on white
    if subset > len(images):
        raise SystemExit(f"--subset {subset}: openmoji's training split holds {len(images)} glyphs")
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:subset]
    path = folder / f"openmoji-{subset}-seed{seed}.npz"
    np.savez(path, images=images[index].permute(0, 2, 3, 1).numpy())
    return path


def run_arm(arm: str, data: Path, seed: int, args, folder: Path) -> Dict:
    from ganforge import api
    from ganforge.commands.eval import evaluate_run

    out = folder / f"{arm}-seed{seed}"
    start = time.perf_counter()
    summary = api.train("stylegan", data=str(data), out=str(out), minutes=args.minutes, seed=seed,
                        set=[f"size={SIZE}", "threads=1", "eval.every=0", *ARMS[arm]], resume="auto",
                        progress=not args.quiet)
    trained = time.perf_counter() - start
    figures = evaluate_run(str(out), metrics="fid,kid", n=args.n, real_spec="openmoji", seed=seed)
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in line][-1]
    return {"arm": arm, "seed": seed, "subset": args.subset, "minutes": args.minutes, "steps": summary["step"],
            "train_minutes": round(summary["minutes"], 2), "wall_seconds": round(trained, 1),
            "fid": figures["fid"], "kid": figures["kid"], "kid_std": figures.get("kid_std"), "n": args.n,
            "ada_p": last.get("augment_p"), "last_losses": {k: v for k, v in last.items() if k.endswith("/loss")}}


def merge(records, results: Path) -> Dict:
    data = json.loads(results.read_text()) if results.is_file() else {"benchmark": "benchmarks/bench_ada.py", "cases": []}
    key = lambda r: (r["subset"], r["minutes"], r["seed"], r["arm"])  # noqa: E731
    fresh = {key(r) for r in records}
    data["cases"] = [c for c in data["cases"] if key(c) not in fresh] + records
    data["machine"] = f"{platform.machine()} with {os.cpu_count()} cores"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n")
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="train and score (without it: the plan)")
    ap.add_argument("--minutes", type=float, default=20.0, help="training minutes of each arm")
    ap.add_argument("--subset", type=int, default=500, help="glyphs drawn from openmoji's training split")
    ap.add_argument("--seeds", default="0", help="comma-separated")
    ap.add_argument("--n", type=int, default=1000, help="samples (and real glyphs) for FID and KID")
    ap.add_argument("--scratch", type=Path, default=Path("runs/bench_ada"), help="where the npz and runs go")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the results file (default benchmarks/results/ada.json)")
    ap.add_argument("--quiet", action="store_true", help="no training progress bars")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print(f"stylegan at {SIZE} px on {args.subset} openmoji glyphs, {args.minutes:g} training minutes per arm "
          f"({', '.join(ARMS)}), seeds {args.seeds}: about {len(seeds) * len(ARMS) * args.minutes:.0f} minutes on one core")
    if not args.run:
        return 0
    import torch

    torch.set_num_threads(1)
    records = []
    for seed in seeds:
        folder = args.scratch / f"subset{args.subset}-minutes{args.minutes:g}"
        folder.mkdir(parents=True, exist_ok=True)
        data = write_subset(folder, args.subset, seed)
        for arm in ARMS:
            records.append(run_arm(arm, data, seed, args, folder))
            r = records[-1]
            print(f"seed {seed} {arm:<8} {r['steps']:>6,} steps  FID {r['fid']:.1f}  KID {r['kid']:.4f}  p {r['ada_p']}", flush=True)
    merge(records, args.results)
    for seed in seeds:
        by_arm = {r["arm"]: r for r in records if r["seed"] == seed}
        change = by_arm["ada"]["fid"] / by_arm["defaults"]["fid"] - 1
        verdict = "meets" if change <= -0.25 else "misses"
        print(f"seed {seed}: ADA changes FID by {100 * change:+.1f}% ({verdict} the -25% target)")
    print(f"-> {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
