"""Do a class-conditional GAN's digits help a classifier that has few real ones?

    python benchmarks/bench_augment.py                     # the plan, no training (as `ganforge bench` runs it)
    python benchmarks/bench_augment.py --run               # k = 10, 50, 400 real digits per class, seeds 0, 1, 2
    python benchmarks/bench_augment.py --run --k 10 --seeds 0 --gan-steps 50 --classifier-steps 100 \\
        --synthetic-per-class 50 --out runs/bench_augment/check     # a check of the mechanism, minutes

For each k and seed: k training digits per class are drawn (seeded) from mnist5k's 4,000-digit training split
and written to an .npz; a cgan (or --model acgan) is trained on that .npz alone through ganforge.api.train, by
steps, with the same seed; `ganforge synth` draws --synthetic-per-class digits per class from it. The shipped
digit classifier's architecture and recipe (tools/train_digit_classifier.py: its augmentation, Adam with cosine
decay, batch 64) is then trained, for the same --classifier-steps and seed, on
  (a) the k real digits, (b) the k real plus the synthetic ones, (c) the synthetic ones alone: the classification
      accuracy score of Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative Models",
and each is scored on mnist5k's 1,000 held-out digits, which neither the GAN nor any classifier sees.

Results merge into benchmarks/results/augment.json per (model, k, seed and settings), from which the table
(mean ± std over seeds) is printed and written to benchmarks/results/augment.md and the README's block.
`--out DIR` puts the runs, results and table in DIR instead and leaves the README alone.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN = "<!-- augment: begin (written by `python benchmarks/bench_augment.py --run` from benchmarks/results/augment.json) -->"
END = "<!-- augment: end -->"
ARMS = (("real", "k real"), ("real+synthetic", "k real + synthetic"), ("synthetic", "synthetic only (CAS)"))
TRAIN_PER_CLASS = 400  # mnist5k's training split: 4,000 digits, 400 of each
# the shipped classifier's recipe: 30 epochs of the 4,000 training digits in batches of 64
CLASSIFIER_STEPS = 30 * math.ceil(10 * TRAIN_PER_CLASS / 64)
GAN_SETS = ("sample.every=0", "eval.metrics=none")  # the classifiers judge the samples; no grids or figures meanwhile


def recipe():
    """tools/train_digit_classifier.py, the shipped classifier's training script (tools/ is not a package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import train_digit_classifier
    finally:
        sys.path.pop(0)
    return train_digit_classifier


def real_subset(images, labels, k: int, seed: int):
    """k digits of each class, drawn with `seed` -> (uint8 (10k, 1, 28, 28), int64 (10k,))."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(10):
        members = (labels == c).nonzero().flatten()
        if k > len(members):
            raise SystemExit(f"--k {k}: class {c} has {len(members)} training digits")
        picked.append(members[torch.randperm(len(members), generator=generator)[:k]])
    index = torch.cat(picked)
    return images[index], labels[index]


def run_case(model: str, k: int, seed: int, args, scratch: Path, train_split, test_split) -> Dict:
    """One (k, seed): the GAN on k real digits per class, its synthetic digits, three classifiers and their scores."""
    import torch

    from ganforge import api
    from ganforge.commands.synth import synthesize

    tool = recipe()
    folder = scratch / f"{model}-k{k}-seed{seed}-steps{args.gan_steps}"
    real_images, real_labels = real_subset(*train_split, k, seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "real.npz", images=real_images[:, 0].numpy(), labels=real_labels.numpy())
    seconds, cpu = {}, {}  # wall and this process's CPU seconds per phase (CPU time: what a busy machine hides)
    t0, c0 = time.perf_counter(), time.process_time()
    api.train(model, data=str(folder / "real.npz"), out=str(folder / "gan"), steps=args.gan_steps, seed=seed,
              set=[*GAN_SETS, f"threads={args.threads}"], resume="auto", progress=not args.quiet)
    seconds["gan"], cpu["gan"] = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    synthesize(folder / "gan", 10 * args.synthetic_per_class, folder / "synthetic", seed=seed, force=True)
    with np.load(folder / "synthetic" / "data.npz") as made:
        fake_images = torch.from_numpy(made["images"]).permute(0, 3, 1, 2).contiguous()  # (N, 1, 28, 28)
        fake_labels = torch.from_numpy(made["labels"])
    seconds["synth"], cpu["synth"] = time.perf_counter() - t0, time.process_time() - c0
    sets = {"real": (real_images, real_labels), "synthetic": (fake_images, fake_labels),
            "real+synthetic": (torch.cat([real_images, fake_images]), torch.cat([real_labels, fake_labels]))}
    accuracy = {}
    torch.set_num_threads(args.threads)  # as the GAN's trainer did
    for arm, _ in ARMS:
        t0, c0 = time.perf_counter(), time.process_time()
        classifier = tool.train(*sets[arm], steps=args.classifier_steps, seed=seed)
        accuracy[arm] = tool.accuracy(classifier, *test_split)
        seconds[f"classifier {arm}"], cpu[f"classifier {arm}"] = time.perf_counter() - t0, time.process_time() - c0
    return {"model": model, "k": k, "seed": seed, "gan_steps": args.gan_steps,
            "synthetic_per_class": args.synthetic_per_class, "classifier_steps": args.classifier_steps,
            "threads": args.threads, "n_real": len(real_labels), "n_synthetic": len(fake_labels), "n_test": len(test_split[1]),
            "accuracy": accuracy, "seconds": {key: round(value, 1) for key, value in seconds.items()},
            "cpu_seconds": {key: round(value, 1) for key, value in cpu.items()}}


SETTINGS = ("model", "k", "gan_steps", "synthetic_per_class", "classifier_steps")


def merge(path: Path, new: List[Dict], provenance: str) -> List[Dict]:
    """The results file's cases with `new` replacing those of the same settings and seed."""
    old = json.loads(path.read_text())["cases"] if path.is_file() else []
    key = lambda case: tuple(case[name] for name in (*SETTINGS, "seed"))
    replaced = {key(case) for case in new}
    for case in new:
        case["measured"] = provenance
    cases = sorted([c for c in old if key(c) not in replaced] + new, key=key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": "benchmarks/bench_augment.py", "cases": cases}, indent=2) + "\n")
    return cases


def cell(values: Sequence[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f}%" if len(values) < 2 else f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}%"


def table(cases: List[Dict]) -> str:
    """One row per setting: held-out accuracy of each arm, mean ± std over its seeds."""
    groups: Dict[tuple, List[Dict]] = {}
    for case in cases:
        groups.setdefault(tuple(case[name] for name in SETTINGS), []).append(case)
    lines = ["| model | real per class | GAN steps | synthetic per class | classifier steps | seeds | "
             + " | ".join(label for _, label in ARMS) + " |", "|---|---|---|---|---|---|" + "---|" * len(ARMS)]
    for (model, k, gan_steps, per_class, classifier_steps), runs in sorted(groups.items()):
        seeds = ", ".join(str(run["seed"]) for run in runs)
        arms = " | ".join(cell([run["accuracy"][arm] for run in runs]) for arm, _ in ARMS)
        lines.append(f"| {model} | {k} | {gan_steps:,} | {per_class:,} | {classifier_steps:,} | {seeds} | {arms} |")
    note = ("Accuracy on mnist5k's 1,000 held-out digits of the shipped classifier's architecture and recipe trained "
            "on each set (mean ± std over seeds).")
    return note + "\n\n" + "\n".join(lines) + "\n"


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"the README has no {BEGIN} ... {END} block: the table is in benchmarks/results/augment.md")
        return
    head, rest = readme.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + text + END + rest.split(END, 1)[1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ganforge.data.catalogue import Kind
    from ganforge.models import MODELS

    conditional = [name for name, cls in MODELS.items() if cls.needs == Kind.LABELS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="train and score (without it: the plan)")
    parser.add_argument("--k", default="10,50,400", help="real digits per class, comma-separated (at most 400)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--model", default="cgan", choices=conditional)
    parser.add_argument("--gan-steps", type=int, default=4000, help="the GAN's steps on each real subset")
    parser.add_argument("--synthetic-per-class", type=int, default=TRAIN_PER_CLASS, help="synthetic digits per class")
    parser.add_argument("--classifier-steps", type=int, default=CLASSIFIER_STEPS,
                        help="steps of every classifier (default: the shipped classifier's 30 epochs of 4,000 digits)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the GAN and the classifiers (the "
                        "shipped classifier was trained on one)")
    parser.add_argument("--out", type=Path, help="runs, results and table here, README untouched (default: the "
                        "runs under runs/bench_augment, results in benchmarks/results and the README)")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    args = parser.parse_args(argv)
    try:
        ks = [int(k) for k in args.k.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error("--k and --seeds take comma-separated whole numbers")
    if not all(1 <= k <= TRAIN_PER_CLASS for k in ks) or \
            min(args.gan_steps, args.synthetic_per_class, args.classifier_steps, args.threads) < 1:
        parser.error(f"--k must be 1 to {TRAIN_PER_CLASS}; --gan-steps, --synthetic-per-class, --classifier-steps and "
                     f"--threads at least 1")
    cases = [(k, seed) for k in ks for seed in seeds]
    print(f"{len(cases)} cases (k {', '.join(map(str, ks))} x seeds {', '.join(map(str, seeds))}): each a {args.model} "
          f"trained {args.gan_steps:,} steps on the k real digits per class, {10 * args.synthetic_per_class:,} synthetic "
          f"digits, and 3 classifiers of {args.classifier_steps:,} steps", flush=True)
    if not args.run:
        print("add --run to train and score them")
        return 0
    from quality import provenance  # benchmarks/quality.py: when, on what and from which commit

    tool = recipe()
    train_split, test_split = tool.load_split(held_out=False), tool.load_split(held_out=True)
    scratch = args.out or ROOT / "runs" / "bench_augment"
    results = (args.out or RESULTS) / "augment.json"
    for k, seed in cases:
        case = run_case(args.model, k, seed, args, scratch, train_split, test_split)
        figures = ", ".join(f"{arm} {100 * value:.1f}%" for arm, value in case["accuracy"].items())
        timing = ", ".join(f"{key} {s:.0f} s ({case['cpu_seconds'][key]:.0f} CPU)" for key, s in case["seconds"].items())
        print(f"k={k} seed={seed}: {figures} ({timing})", flush=True)
        merge(results, [case], provenance())  # each case is kept as soon as it is measured
    cases_all = json.loads(results.read_text())["cases"]
    text = table(cases_all)
    print(text)
    (results.parent / "augment.md").write_text(text)
    if args.out is None:
        write_readme(text)
    print(f"wrote {results} and {results.parent / 'augment.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
