"""How well `ganforge project` finds held-out pictures in a StyleGAN's latent space.

mnist5k (default): 100 held-out digits (10 per class, mnist5k-test, never trained on) projected into W+ (or
--space); the digit classifier reads each reconstruction, and the share read as the original's label is the
figure (target: at least 95%), beside the mean PSNR and SSIM. --data openmoji: 100 glyphs of openmoji:test,
PSNR and SSIM. The run is --run PATH, or one the script trains with the family's defaults for --train-steps
steps, seeded. Prints the figures and writes them under their case in benchmarks/results/project.json.

    python benchmarks/bench_project.py [--run PATH | --train-steps 2000] [--data mnist5k|openmoji] [--n 100]
                                       [--steps 200] [--space w+] [--seed 0] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "project.json"
HELD_OUT = {"mnist5k": "mnist5k-test", "openmoji": "openmoji:test"}
TARGET_ACCURACY = 0.95


def held_out(data: str, n: int, size: int, channels: int):
    """n held-out pictures uint8 (n, C, size, size) spread evenly over the split (sorted by class for digits), and
    their labels (digits only)."""
    import torch

    from ganforge.data import load_dataset

    test = load_dataset(HELD_OUT[data], size=size, channels=channels)
    if n > len(test):
        raise SystemExit(f"--n {n}: {HELD_OUT[data]} holds {len(test)} pictures")
    idx = torch.linspace(0, len(test) - 1, n).round().long()
    return test.images[idx], None if test.labels is None else test.labels[idx]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="a stylegan run folder or checkpoint (default: train one)")
    ap.add_argument("--data", choices=sorted(HELD_OUT), default="mnist5k")
    ap.add_argument("--train-steps", type=int, default=2000, help="steps of the run trained when --run is not given")
    ap.add_argument("--n", type=int, default=100, help="held-out pictures projected")
    ap.add_argument("--steps", type=int, help="projection steps (default: the command's)")
    ap.add_argument("--space", default="w+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=25, help="pictures optimised at once")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    from ganforge import api
    from ganforge.latent.project import DEFAULT_STEPS

    torch.set_num_threads(args.threads)
    steps = args.steps or DEFAULT_STEPS
    run = args.run
    if run is None:
        run = str(Path(tempfile.mkdtemp()) / "stylegan")
        t0 = time.perf_counter()
        api.train("stylegan", data=args.data, steps=args.train_steps, seed=args.seed, out=run, progress=True,
                  set=["eval.metrics=none", "sample.every=0", "checkpoint.every=0"])
        print(f"trained stylegan on {args.data} for {args.train_steps} steps in {(time.perf_counter() - t0) / 60:.1f} min -> {run}")
    g = api.load(run)
    if g.meta["model"] != "stylegan":
        raise SystemExit(f"{run} holds a {g.meta['model']} run; this benchmark projects into a stylegan")
    targets, labels = held_out(args.data, args.n, g.model.size, g.model.channels)
    t0 = time.perf_counter()
    psnr, ssim, images = [], [], []
    for i in range(0, args.n, args.batch):
        latents, recon = api.project(g, targets[i : i + args.batch], steps=steps, space=args.space, seed=args.seed,
                                     progress=True)
        psnr.append(latents.figures["psnr"])
        ssim.append(latents.figures["ssim"])
        images.append(recon)
    seconds = time.perf_counter() - t0
    psnr, ssim = np.concatenate(psnr), np.concatenate(ssim)
    record = {"run": str(run), "run_step": g.step, "n": args.n, "space": args.space, "steps": steps, "seed": args.seed,
              "threads": args.threads, "psnr": float(psnr.mean()), "ssim": float(ssim.mean()),
              "seconds_per_picture": seconds / args.n}
    line = f"{args.data}: {args.n} pictures, {args.space}, {steps} steps: PSNR {record['psnr']:.2f} dB, SSIM {record['ssim']:.4f}"
    if labels is not None:
        from ganforge.metrics.digits import digit_metrics

        record["accuracy"] = digit_metrics(torch.cat(images), labels)["accuracy"]
        record["target_accuracy"] = TARGET_ACCURACY
        line += f", read as the original's digit {100 * record['accuracy']:.1f}% (target {100 * TARGET_ACCURACY:.0f}%)"
    print(line + f"; {record['seconds_per_picture']:.2f} s per picture")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[f"{args.data}-{args.space}"] = record
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
