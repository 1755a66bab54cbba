"""What InfoGAN's codes learn on digits (Chen et al. 2016, section 7.1): train infogan on mnist5k by steps, then

(a) the categorical code against the digit: samples of each code value (the rest of the latent drawn) are read
    by the shipped digit classifier, and the codes are matched one to one with the digits so that the most
    samples agree (an assignment problem); the agreement is the share of samples whose code's digit is the one
    read. The paper reports 5% error on MNIST; the target here is at least 90%.
(b) each continuous code's effect: for `--rows` latents, the code is swept from -2 to 2 (the others fixed, the
    other continuous codes at 0) and two properties of each image are measured: its ink area (the mean ink,
    0 to 1 per pixel: stroke thickness) and its slant (the ink's x-y second moment over its y second moment,
    y upwards, so that a digit leaning right has a positive slant). Per latent, the Spearman rank correlation
    of each property with the code; the table gives their mean over the latents (+1 or -1: the property moves
    with the code, monotonically, for every latent; near 0: the code does not drive it).

    python benchmarks/infogan_codes.py [--steps 3000] [--seeds 0,1] [--per-code 200] [--rows 64] [--sweep 9]
                                       [--set KEY=VALUE ...]   # a variant of the defaults, e.g. n_cont=0

Writes benchmarks/results/infogan_codes.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results" / "infogan_codes.json"
DIGIT_SIZE = 28  # the classifier's input, as metrics/digits.py prepares it


def best_matching(counts: np.ndarray) -> List[int]:
    """The one-to-one assignment of rows (codes) to columns (digits) with the largest total count -> the column of
    each row. scipy's linear_sum_assignment where it is installed, else an exact search over subsets of columns."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return _matching_by_subsets(counts)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return [int(c) for _, c in sorted(zip(rows, cols))]


def _matching_by_subsets(counts: np.ndarray) -> List[int]:
    """The exact assignment by dynamic programming over the sets of columns taken by the first rows (2^K states)."""
    k = counts.shape[0]
    best = {0: (0.0, [])}  # set of columns used -> (total, columns of the rows so far)
    for row in range(k):
        nxt: Dict[int, tuple] = {}
        for used, (total, cols) in best.items():
            for col in range(counts.shape[1]):
                if not used >> col & 1:
                    key, value = used | 1 << col, total + counts[row, col]
                    if key not in nxt or value > nxt[key][0]:
                        nxt[key] = (value, cols + [col])
        best = nxt
    return max(best.values(), key=lambda v: v[0])[1]


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (Spearman's convention)."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; 0 where either side is constant."""
    ra, rb = ranks(a) - (len(a) - 1) / 2, ranks(b) - (len(b) - 1) / 2
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def ink_properties(images: torch.Tensor):
    """Images (N, 1, H, W) in [-1, 1] -> (ink area (N,), slant (N,)): the mean ink in [0, 1], and the ink's
    x-y second moment over its y second moment with y pointing up."""
    ink = ((images[:, 0].float() + 1) / 2).clamp(0, 1)  # (N, H, W)
    h, w = ink.shape[1:]
    ys = -torch.arange(h, dtype=torch.float32).view(1, h, 1)  # up
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    mass = ink.sum(dim=(1, 2)).clamp_min(1e-6)
    my = (ink * ys).sum(dim=(1, 2)) / mass
    mx = (ink * xs).sum(dim=(1, 2)) / mass
    dy, dx = ys - my.view(-1, 1, 1), xs - mx.view(-1, 1, 1)
    mu11 = (ink * dx * dy).sum(dim=(1, 2)) / mass
    mu02 = (ink * dy * dy).sum(dim=(1, 2)).div(mass).clamp_min(1e-6)
    return ink.mean(dim=(1, 2)), mu11 / mu02


@torch.no_grad()
def read_digits(images: torch.Tensor) -> torch.Tensor:
    """The digit the shipped classifier reads in each image (N, 1, H, W) in [-1, 1]."""
    from ganforge.features.digit_classifier import load_digit_classifier

    x = images.float().clamp(-1, 1)
    if x.shape[-1] != DIGIT_SIZE:
        x = F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    model = load_digit_classifier("cpu")
    return torch.cat([model(chunk.contiguous(memory_format=torch.channels_last)).argmax(dim=1) for chunk in x.split(500)])


@torch.no_grad()
def categorical_agreement(g, per_code: int, seed: int) -> Dict:
    model = g.model
    counts = np.zeros((model.n_cat, 10), dtype=np.int64)
    for k in range(model.n_cat):
        digits = read_digits(g.sample(per_code, seed=seed + k, codes={"cat": k}))
        counts[k] = np.bincount(digits.numpy(), minlength=10)
    if model.n_cat != 10:
        raise SystemExit(f"the digit agreement matches 10 codes to 10 digits; this run has n_cat={model.n_cat}")
    digit_of = best_matching(counts)
    agreed = sum(counts[k, d] for k, d in enumerate(digit_of))
    return {"agreement": float(agreed / counts.sum()), "digit_of_code": digit_of, "counts": counts.tolist()}


@torch.no_grad()
def continuous_effects(g, rows: int, sweep: int, seed: int) -> Dict:
    model = g.model
    continuous = model.code_names[1:]
    z = model.latent(rows, torch.Generator().manual_seed(seed))
    values = torch.linspace(-2.0, 2.0, sweep)
    effects = {}
    for code in continuous:
        fixed = model.with_codes(z, {c: 0.0 for c in continuous})
        images = torch.stack([model.G(model.with_codes(fixed, {code: float(v)})) for v in values], dim=1)  # (rows, sweep, ...)
        area, slant = ink_properties(images.flatten(0, 1))
        area, slant = area.view(rows, sweep).numpy(), slant.view(rows, sweep).numpy()
        c = values.numpy()
        rho_area = [spearman(c, a) for a in area]
        rho_slant = [spearman(c, s) for s in slant]
        effects[code] = {
            "ink_rho": float(np.mean(rho_area)), "ink_rho_sd": float(np.std(rho_area)),
            "slant_rho": float(np.mean(rho_slant)), "slant_rho_sd": float(np.std(rho_slant)),
            "ink_at_ends": [float(area[:, 0].mean()), float(area[:, -1].mean())],
            "slant_at_ends": [float(slant[:, 0].mean()), float(slant[:, -1].mean())],
        }
    return effects


def run_seed(seed: int, steps: int, args) -> Dict:
    import ganforge

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = ganforge.train("infogan", data="mnist5k", steps=steps, seed=seed, out=str(Path(folder) / "run"),
                                 set=["eval.metrics=none", "sample.every=0", "checkpoint.every=0", f"threads={args.threads}",
                                      *args.set],
                                 progress=False)
        minutes = (time.perf_counter() - start) / 60
        g = ganforge.load(Path(folder) / "run")
    torch.manual_seed(seed)
    result = {"seed": seed, "steps": summary["step"], "train_minutes": round(minutes, 2)}
    result.update(categorical_agreement(g, args.per_code, seed=1000 * seed))
    result["continuous"] = continuous_effects(g, args.rows, args.sweep, seed=1000 * seed + 999)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps per seed")
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    parser.add_argument("--per-code", type=int, default=200, help="samples per categorical value for the agreement")
    parser.add_argument("--rows", type=int, default=64, help="latents swept per continuous code")
    parser.add_argument("--sweep", type=int, default=9, help="values of a continuous code from -2 to 2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="infogan settings changed from the defaults")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results = [run_seed(s, args.steps, args) for s in seeds]
    codes = list(results[0]["continuous"])  # none with n_cont=0
    record = {
        "command": "python benchmarks/infogan_codes.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in (("steps", args.steps), ("seeds", args.seeds), ("per_code", args.per_code),
                                                          ("rows", args.rows), ("sweep", args.sweep), ("threads", args.threads)))
                   + (f" --set {' '.join(args.set)}" if args.set else ""),
        "target_agreement": 0.9,
        "runs": results,
        "mean_agreement": float(np.mean([r["agreement"] for r in results])),
        "continuous": {c: {k: float(np.mean([r["continuous"][c][k] for r in results])) for k in ("ink_rho", "slant_rho")}
                       for c in codes},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"infogan on mnist5k, {args.steps} steps per seed; Spearman rho of each property with the code, mean over {args.rows} latents")
    header = f"{'seed':>4}  {'min':>5}  {'cat~digit':>9}  " + "  ".join(f"{c + ' ink':>8}  {c + ' slant':>9}" for c in codes)
    print(header)
    for r in results:
        cells = "  ".join(f"{r['continuous'][c]['ink_rho']:>8.2f}  {r['continuous'][c]['slant_rho']:>9.2f}" for c in codes)
        print(f"{r['seed']:>4}  {r['train_minutes']:>5.1f}  {100 * r['agreement']:>8.1f}%  {cells}")
    verdict = "meets" if record["mean_agreement"] >= 0.9 else "is short of"
    print(f"mean agreement {100 * record['mean_agreement']:.1f}% ({verdict} the 90% target) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
