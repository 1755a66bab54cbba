"""Training throughput: ganforge's trainer against a textbook loop of the same networks, on the CPU.

The textbook loop is the one most tutorials teach: a DataLoader whose dataset converts and normalises
each sample on its own, G(z) computed again for every critic step and once more for the G step, D's
parameter gradients computed (then thrown away) during the G step, torch's default optimiser
implementation, the networks in the memory layout they are built in, and WGAN-GP's penalty through
autograd's double backward. Both sides use the same networks, losses, optimiser settings, batch size and
threads. Each measurement runs in a fresh process holding both loops, each with its own networks, and
alternates them one iteration at a time, so that drift in the machine's speed hits both alike. The colour
cases train on openmoji (`pip install 'ganforge[openmoji]'`) at 64 and 128 px; StyleGAN's textbook step is
StyleGAN2's as tutorials write it (R1 through autograd every r1_every steps, the EMA a loop over parameters).

    python benchmarks/bench_train.py [--models dcgan,gan] [--pairs 3] [--iters 20] [--threads N]
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
# WGAN-GP, >= 1.3x for the other convolutional ones. The digits at 28 px, and colour emoji (openmoji) at 64 and
# 128 px with the settings a run gets there (the family's recipe for the size)
COLOUR = ["data=openmoji"]
CASES = {
    "gan": ("gan", [], 1.5),
    "cgan-mlp": ("cgan", ["networks=mlp"], 1.5),
    "cgan": ("cgan", [], 1.3),
    "dcgan": ("dcgan", [], 1.3),
    "wgan-gp": ("wgan-gp", [], 1.5),
    "dcgan-64": ("dcgan", [*COLOUR, "size=64"], 1.3),
    "dcgan-128": ("dcgan", [*COLOUR, "size=128"], 1.3),
    "stylegan-64": ("stylegan", [*COLOUR, "size=64"], 1.3),
    "stylegan-128": ("stylegan", [*COLOUR, "size=128"], 1.3),
}


MIN_SECONDS = 3.0  # each loop runs at least this long in a measurement, and at least --iters iterations


def make_trainer(name: str, threads: int):
    import torch

    from ganforge import api
    from ganforge.training import distributed
    from ganforge.training.trainer import Trainer

    model, sets, _ = CASES[name]
    sets = ["eval.metrics=none", "sample.every=0", "checkpoint.every=0", "log.every=0", *sets] + (
        [f"threads={threads}"] if threads else [])
    cfg, data = api.resolve_for_data(model, api.resolve_config(model, sets=sets, steps=10**6), sets=sets, steps=10**6)
    trainer = Trainer(cfg, tempfile.mkdtemp(), progress=False, data=data)
    torch.set_num_threads(distributed.cpu_threads(cfg.threads, trainer.ranks))  # as Trainer.fit does; the same for both loops
    return trainer


def measure_speed(name: str, iters: int, threads: int) -> dict:
    """img/s of both loops, interleaved one iteration at a time in this process (each with its own copy of the
    networks), so that the machine's speed, which drifts by tens of percent over seconds here, hits both alike."""
    loops = {"ours": ours_iteration(make_trainer(name, threads)), "textbook": textbook_iteration(make_trainer(name, threads))}
    running: dict = {}
    for step in loops.values():
        for _ in range(3):  # warm-up
            step(running)
    seconds, images, done = dict.fromkeys(loops, 0.0), dict.fromkeys(loops, 0), 0
    while done < iters or min(seconds.values()) < MIN_SECONDS:
        for variant in (("ours", "textbook") if done % 2 == 0 else ("textbook", "ours")):
            t0 = time.perf_counter()
            images[variant] += loops[variant](running)
            seconds[variant] += time.perf_counter() - t0
        done += 1
    return {variant: images[variant] / seconds[variant] for variant in loops}


def measure_memory(name: str, variant: str, iters: int, threads: int) -> float:
    """Peak resident memory (MB) of one loop alone in this process."""
    trainer = make_trainer(name, threads)
    step = ours_iteration(trainer) if variant == "ours" else textbook_iteration(trainer)
    running: dict = {}
    for _ in range(iters):
        step(running)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    from ganforge.training.optim import build_optimizer

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
    if model.name == "stylegan":
        return _textbook_stylegan(model, cfg, next_batch, opt_d, opt_g)

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


def _textbook_stylegan(model, cfg, next_batch, opt_d, opt_g):
    """StyleGAN2's step as a tutorial writes it: the same networks, mixing, losses, lazy R1 and EMA of G, with G run
    again for the G step, R1 through autograd on the real batch and the EMA a loop over the parameters."""
    import copy

    import torch

    from ganforge import losses

    state = {"step": 0}
    ema = copy.deepcopy(model.G).requires_grad_(False)

    def step(_running):
        real, _ = next_batch()
        n = real.shape[0]
        opt_d.zero_grad()
        fake, _ = model.fake_batch(n, real.device)
        lazy_r1 = cfg.r1_gamma > 0 and state["step"] % cfg.r1_every == 0
        real = real.requires_grad_(lazy_r1)
        d_real = model.D(real)
        loss = losses.d_loss(cfg.loss, d_real, model.D(fake.detach()))
        if lazy_r1:
            grad, = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss = loss + cfg.r1_gamma / 2 * cfg.r1_every * grad.square().sum(dim=[1, 2, 3]).mean()
        loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        fake, _ = model.fake_batch(n, real.device)  # G again for its own step; D's gradients are computed too
        losses.g_loss(cfg.loss, model.D(fake)).backward()
        opt_g.step()
        with torch.no_grad():
            for averaged, live in zip(ema.parameters(), model.G.parameters()):
                averaged.lerp_(live, 1 - cfg.ema.beta)
        state["step"] += 1
        return n

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(CASES), help=f"some of {', '.join(CASES)}")
    ap.add_argument("--pairs", type=int, default=3, help="measurements per case, each in a fresh process")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for both loops (default: the config's, torch's own count)")
    ap.add_argument("--speed", metavar="CASE", help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed:
        print(json.dumps(measure_speed(args.speed, args.iters, args.threads)))
        return
    if args.memory:
        print(json.dumps(measure_memory(*args.memory, args.iters, args.threads)))
        return
    import torch

    print(f"{args.threads or torch.get_num_threads()} thread(s)")
    print(f"{'case':<8} {'ours img/s':>11} {'textbook':>9} {'ratio':>6} {'target':>6}  ratios measured  peak RSS ours/textbook")
    for model in args.models.split(","):
        if model not in CASES:
            sys.exit(f"unknown case '{model}'; choose from {', '.join(CASES)}")
        common = ["--iters", str(args.iters), "--threads", str(args.threads)]
        try:
            runs = [json.loads(subprocess.run([sys.executable, __file__, "--speed", model, *common], check=True,
                                              capture_output=True, text=True).stdout) for _ in range(args.pairs)]
        except subprocess.CalledProcessError as e:  # the colour cases need the openmoji extra, say
            lines = e.stderr.strip().splitlines()
            print(f"{model:<8} skipped: {lines[-1] if lines else 'the measurement failed'}", flush=True)
            continue
        ratios = sorted(r["ours"] / r["textbook"] for r in runs)
        rss = [json.loads(subprocess.check_output([sys.executable, __file__, "--memory", model, v, "--iters", "10", "--threads", str(args.threads)]))
               for v in ("ours", "textbook")]
        print(f"{model:<8} {statistics.median(r['ours'] for r in runs):>11.0f} {statistics.median(r['textbook'] for r in runs):>9.0f} "
              f"{statistics.median(ratios):>5.2f}x {CASES[model][2]:>5.1f}x  {' '.join(f'{r:.2f}' for r in ratios):<15}  "
              f"{rss[0]:.0f} / {rss[1]:.0f} MB", flush=True)
    print(f"(median of {args.pairs} measurements, each in a fresh process that interleaves the two loops one iteration "
          f"at a time for at least {args.iters} iterations and {MIN_SECONDS:g} s each, after 3 warm-up iterations; "
          "peak RSS from a separate process per loop)")


if __name__ == "__main__":
    main()
