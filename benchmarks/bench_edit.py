""""Make this digit thicker, keep the digit": N samples of a default StyleGAN run on mnist5k edited along `thick`
(latent/directions.py), scored by the shipped digit classifier and by ink area (the share of pixels brighter than
mid-grey). The edit passes when the classifier still reads the original digit on at least 95% of the samples
while their mean ink area moves the way the strength's sign asks.

Three edits of the same samples at the same strength: as `ganforge edit` does by default (orthogonal to the digit
normals and held to the digit read at the start), orthogonal only, and the plain boundary normal.

    python benchmarks/bench_edit.py [--run RUN | --steps 5000] [--n 1000] [--strength 3] [--seed 0] [--threads 1]

Without --run the script trains a default stylegan on mnist5k for --steps steps with --seed first. The run's
checkpoint is copied to a temporary folder so that the directions are found (and timed) afresh and the run's own
folder is left as it was. Writes benchmarks/results/edit.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "edit.json"
KEPT = 0.95  # the share of samples whose digit must survive the edit
VARIANTS = {"default (keep digits, hold digit)": dict(keep=None, hold=None),
            "orthogonal to the digit normals only": dict(keep=None, hold="none"),
            "plain boundary normal": dict(keep=[], hold="none")}


def checkpoint_copy(run: str, folder: Path) -> Path:
    """The run's latest checkpoint alone, in a fresh run folder."""
    from ganforge.training import checkpoint

    sidecar = checkpoint.resolve(run)
    target = folder / "checkpoints"
    target.mkdir(parents=True)
    for path in (sidecar, sidecar.with_suffix(".safetensors")):
        shutil.copy2(path, target / path.name)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="a stylegan run on mnist5k (default: train one)")
    ap.add_argument("--steps", type=int, default=5000, help="without --run: the training steps")
    ap.add_argument("--n", type=int, default=1000, help="samples edited")
    ap.add_argument("--strength", type=float, default=3.0, help="standard deviations of the latents along thick")
    ap.add_argument("--seed", type=int, default=0, help="the training seed; the edited samples are drawn from seed + 1")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    import ganforge
    from ganforge.latent.directions import digit_reader, ink_area
    from ganforge.latent.space import Latents

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is None:
            source = Path(tmp) / "trained"
            t0 = time.perf_counter()
            ganforge.train("stylegan", data="mnist5k", out=str(source), steps=args.steps, seed=args.seed,
                           set=[f"threads={args.threads}"], progress=False)
            print(f"trained stylegan for {args.steps} steps in {time.perf_counter() - t0:.0f} s")
        else:
            source = args.run
        g = ganforge.load(checkpoint_copy(str(source), Path(tmp) / "run"))
        if g.meta["model"] != "stylegan" or g.info.get("name") != "mnist5k":
            raise SystemExit(f"--run must be a stylegan run on mnist5k, got {g.meta['model']} on {g.info.get('name')}")
        t0 = time.perf_counter()
        found = ganforge.api.directions(g)
        find_seconds = time.perf_counter() - t0
        print(f"directions found in {find_seconds:.1f} s; thick's boundary: held-out accuracy "
              f"{found.accuracies[found.index('thick')].item():.3f}")

        model = g.model
        start = Latents("z", model.latent(args.n, torch.Generator().manual_seed(args.seed + 1)))
        read = digit_reader(model, g.info)
        with torch.no_grad():
            before = model.generate(start.values, "z").clamp(-1, 1)
            digits = torch.cat([read(part).argmax(dim=1) for part in before.split(500)])
        ink_before = ink_area(before).mean().item()
        rows = []
        for name, how in VARIANTS.items():
            t0 = time.perf_counter()
            _, after = ganforge.api.edit(g, start, "thick", args.strength, **how)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                kept = (torch.cat([read(part).argmax(dim=1) for part in after.split(500)]) == digits).double().mean().item()
            ink_after = ink_area(after).mean().item()
            moved = (ink_after - ink_before) * (1 if args.strength > 0 else -1) > 0
            rows.append({"edit": name, "ink_before": round(ink_before, 4), "ink_after": round(ink_after, 4),
                         "kept": round(kept, 4), "passes": bool(moved and kept >= KEPT), "seconds": round(seconds, 1)})
            print(f"{name:<38} ink area {ink_before:.4f} -> {ink_after:.4f}  digit kept {100 * kept:5.1f}%  "
                  f"{'pass' if rows[-1]['passes'] else 'fail'}  ({seconds:.1f} s)")
    result = {"run": args.run or f"stylegan on mnist5k, {args.steps} steps, seed {args.seed}", "step": g.step,
              "n": args.n, "strength": args.strength, "threads": args.threads, "kept_at_least": KEPT,
              "find_seconds": round(find_seconds, 1), "edits": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
