"""What StyleGAN's FIR filters cost: a training step (G and D, forward and backward, optimiser and EMA: the trainer's
own iteration) with resample=fir against resample=none, on the CPU.

Both trainers live in one process on the same data and alternate one iteration at a time (fir, none, none, fir,
...), so that drift in the machine's speed hits both alike; each counts its steps as a run does, so R1's lazy
steps fall alike. Each measurement is `--iters` iterations of each; the ratio is fir's time over none's.

    python benchmarks/bench_resample.py [--size 64] [--pairs 3] [--iters 32] [--threads 1] [--data openmoji]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

VARIANTS = ("fir", "none")


def make_trainer(resample: str, data: str, size: int, threads: int):
    import torch

    from ganforge import config as C
    from ganforge.models import get_model
    from ganforge.training.trainer import Trainer

    cfg = C.resolve("stylegan", get_model("stylegan").defaults, None, {"steps": 10**6, "data": data, "size": size},
                    [f"resample={resample}", f"threads={threads}", "eval.metrics=none", "sample.every=0",
                     "checkpoint.every=0", "log.every=0"])
    trainer = Trainer(cfg, tempfile.mkdtemp(), progress=False)
    torch.set_num_threads(threads)  # as Trainer.fit does
    return trainer


def iteration(trainer) -> None:
    """What Trainer.fit does per step: the iteration, its one finiteness check, the step count."""
    _, finite = trainer._iteration({})
    bool(finite)
    trainer.step += 1


def measure(trainers: dict, iters: int) -> dict:
    """Seconds per step of each variant over `iters` alternated iterations."""
    seconds = dict.fromkeys(trainers, 0.0)
    for i in range(iters):
        for name in (VARIANTS if i % 2 == 0 else VARIANTS[::-1]):
            t0 = time.perf_counter()
            iteration(trainers[name])
            seconds[name] += time.perf_counter() - t0
    return {name: s / iters for name, s in seconds.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--data", default="openmoji")
    ap.add_argument("--pairs", type=int, default=3, help="measurements, each of --iters steps of both variants")
    ap.add_argument("--iters", type=int, default=32, help="steps of each variant per measurement (R1 runs every 16th)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    trainers = {name: make_trainer(name, args.data, args.size, args.threads) for name in VARIANTS}
    measure(trainers, 4)  # warm-up
    print(f"stylegan at {args.size} px on {args.data}, batch {trainers['fir'].cfg.batch_size}, {args.threads} thread(s)")
    print(f"{'fir ms/step':>12} {'none ms/step':>13} {'ratio':>6}")
    ratios = []
    for _ in range(args.pairs):
        t = measure(trainers, args.iters)
        ratios.append(t["fir"] / t["none"])
        print(f"{t['fir'] * 1e3:>12.1f} {t['none'] * 1e3:>13.1f} {ratios[-1]:>6.3f}")
    print(f"median ratio fir / none: {statistics.median(ratios):.3f} (the filters cost {statistics.median(ratios) - 1:+.1%} of a step)")


if __name__ == "__main__":
    main()
