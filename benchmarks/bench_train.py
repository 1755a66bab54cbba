"""Training throughput: ganforge's trainer against a textbook loop of the same networks, on the CPU.

The textbook loop is the one most tutorials teach: a DataLoader whose dataset converts and normalises
each sample on its own, G(z) computed again for every critic step and once more for the G step, D's
parameter gradients computed (then thrown away) during the G step, torch's default optimiser
implementation, and the networks in the memory layout they are built in. Both sides use the same networks, losses, optimiser settings, batch size and threads;
each measurement runs in a fresh process, and the two alternate (ours, textbook, ours, ...) so that
drift in the machine's speed hits both alike.

    python benchmarks/bench_train.py [--models dcgan,gan] [--pairs 3] [--iters 20]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# name: (model, settings on top of its defaults, the speed-up to reach): >= 1.5x for MLP networks and
# WGAN-GP, >= 1.3x for the other convolutional ones
CASES = {
    "gan": ("gan", [], 1.5),
    "cgan-mlp": ("cgan", ["networks=mlp"], 1.5),
    "cgan": ("cgan", [], 1.3),
    "dcgan": ("dcgan", [], 1.3),
    "wgan-gp": ("wgan-gp", [], 1.5),
}


MIN_SECONDS = 3.0  # each measurement runs at least this long, and at least --iters iterations


def measure(name: str, variant: str, iters: int) -> dict:
    import torch

    from ganforge import config as C
    from ganforge.models import get_model
    from ganforge.training.trainer import Trainer

    model, sets, _ = CASES[name]
    cfg = C.resolve(model, get_model(model).defaults, None, {"steps": 10**6},
                    ["eval.metrics=none", "sample.every=0", "checkpoint.every=0", "log.every=0", *sets])
    trainer = Trainer(cfg, tempfile.mkdtemp(), progress=False)
    torch.set_num_threads(cfg.threads)  # as Trainer.fit does; the same for both variants
    step = ours_iteration(trainer) if variant == "ours" else textbook_iteration(trainer)
    running: dict = {}
    for _ in range(3):  # warm-up
        step(running)
    t0, images, done = time.perf_counter(), 0, 0
    while done < iters or time.perf_counter() - t0 < MIN_SECONDS:  # fast models run longer: less noise
        images += step(running)
        done += 1
    seconds = time.perf_counter() - t0
    return {"img_s": images / seconds, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def ours_iteration(trainer):
    """What Trainer.fit does per step: the iteration and its one finiteness check."""

    def step(running):
        drawn, finite = trainer._iteration(running)
        bool(finite)
        return drawn

    return step


def textbook_iteration(trainer):
    """The same model's losses driven the textbook way (see the module docstring)."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    from ganforge import losses
    from ganforge.training.trainer import build_optimizer

    model, cfg = trainer.model, trainer.cfg
    model.to(memory_format=torch.contiguous_format)  # the layout a model is built in (the trainer's is channels-last)
    images = trainer.data.images.numpy()  # uint8 (N, C, H, W)
    labels = trainer.data.labels

    class PerSample(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            x = torch.from_numpy(images[i]).float().div(255.0)  # ToTensor
            x = (x - 0.5) / 0.5  # Normalize((0.5,), (0.5,))
            return (x, labels[i]) if labels is not None else (x, 0)

    loader = DataLoader(PerSample(), batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    state = {"it": iter(loader)}

    def next_batch():
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            return next(state["it"])

    # torch's default optimisers over the same parameters, as a tutorial builds them
    opt_d, opt_g = (build_optimizer(trainer.optimizers[name].param_groups[0]["params"], cfg.optim[name], fused=False)
                    for name in ("D", "G"))
    conditional = model.needs == "labels"

    def d_scores(x, y):
        out = model.D(x, y if conditional and model.name in ("cgan",) else None)
        return out

    def step(_running):
        drawn = 0
        for _ in range(cfg.n_critic):
            real, y = next_batch()
            drawn += real.shape[0]
            z = torch.randn(real.shape[0], model.z_dim)
            fy = torch.randint(0, model.n_classes, (real.shape[0],)) if conditional else None
            fake = model.G(z, fy)  # recomputed for every critic step, with its graph
            opt_d.zero_grad()
            yr = y if conditional else None
            if model.name == "acgan":
                out_r, out_f = model.D(real), model.D(fake.detach())
                loss = losses.d_loss(cfg.loss, out_r[:, 0], out_f[:, 0]) + losses.classification(out_r[:, 1:], yr) + losses.classification(out_f[:, 1:], fy)
            else:
                loss = losses.d_loss(cfg.loss, d_scores(real, yr), d_scores(fake.detach(), fy))
            if model.name == "wgan-gp":
                loss = loss + cfg.gp_weight * losses.gradient_penalty(lambda x: model.D(x), real, fake.detach())
            loss.backward()
            opt_d.step()
            model.after_step("D")
        z = torch.randn(cfg.batch_size, model.z_dim)
        fy = torch.randint(0, model.n_classes, (cfg.batch_size,)) if conditional else None
        opt_g.zero_grad()
        fake = model.G(z, fy)  # and once more for the G step; D's gradients are computed too
        if model.name == "acgan":
            out = model.D(fake)
            loss = losses.g_loss(cfg.loss, out[:, 0]) + losses.classification(out[:, 1:], fy)
        else:
            loss = losses.g_loss(cfg.loss, d_scores(fake, fy))
        loss.backward()
        opt_g.step()
        return drawn

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(CASES), help=f"some of {', '.join(CASES)}")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.iters)))
        return
    print(f"{'case':<8} {'ours img/s':>11} {'textbook':>9} {'ratio':>6} {'target':>6}  peak RSS ours/textbook")
    for model in args.models.split(","):
        if model not in CASES:
            sys.exit(f"unknown case '{model}'; choose from {', '.join(CASES)}")
        ratios, ours, book = [], [], []
        for _ in range(args.pairs):
            a, b = (json.loads(subprocess.check_output([sys.executable, __file__, "--one", model, v, "--iters", str(args.iters)]))
                    for v in ("ours", "textbook"))
            ours.append(a)
            book.append(b)
            ratios.append(a["img_s"] / b["img_s"])
        print(f"{model:<8} {statistics.median(r['img_s'] for r in ours):>11.0f} {statistics.median(r['img_s'] for r in book):>9.0f} "
              f"{statistics.median(ratios):>5.2f}x {CASES[model][2]:>5.1f}x  "
              f"{max(r['maxrss_mb'] for r in ours):.0f} / {max(r['maxrss_mb'] for r in book):.0f} MB", flush=True)
    print(f"(median of {args.pairs} alternating pairs, each at least {args.iters} iterations and {MIN_SECONDS:g} s after 3 "
          "warm-up iterations, in a fresh process)")


if __name__ == "__main__":
    main()
