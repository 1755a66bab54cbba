"""The one training loop. Every GAN family runs through it; a family only says what its phases compute.

Per iteration: for each phase of the model (D repeated n_critic times, then G, by default) freeze the
networks the phase must not update, draw a batch where the phase asks for one, zero the phase's
gradients, run the model's step, backpropagate its "loss", step the optimiser and let the model act
after it (weight clipping). Then the schedules and the EMA advance one generator step, and adaptive
augmentation moves its p when its interval of D steps is over.

Losses stay on the device and are summed there; the host reads them only every `log.every` steps.
Once per iteration the host asks one question: were all of this step's losses finite? If not, the run
rolls back to its last checkpoint (or its starting state) and retries with lower learning rates.

Beside the loop: optimisers and schedules in training/optim.py, the run state a checkpoint holds (save,
resume, roll-back) in training/state.py, the device in training/devices.py.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ganforge import config as config_mod
from ganforge.data import ImageData, load_dataset
from ganforge.data.sampler import BatchSampler
from ganforge.imaging.grid import save_grid
from ganforge.models import GANModel, StepContext, get_model
from ganforge.training import checkpoint, distributed, state
from ganforge.training.devices import place
from ganforge.training.ema import EMA
from ganforge.training.optim import Schedule, build_optimizers
from ganforge.training.precision import Precision, effective
from ganforge.training.report import MetricsLog, Progress, plot_losses
from ganforge.training.tensorboard import open_board

log = logging.getLogger("ganforge")


class _TrainingClock:
    """Seconds of training since a start: the wall clock, less what the trainer spent evaluating meanwhile."""

    def __init__(self, trainer: "Trainer"):
        self.trainer = trainer
        self.reset()

    def reset(self) -> None:
        self.started, self.evaluated = time.monotonic(), self.trainer.eval_seconds

    def seconds(self) -> float:
        return time.monotonic() - self.started - (self.trainer.eval_seconds - self.evaluated)


class Trainer:
    def __init__(self, cfg: config_mod.Config, out: Path, *, resume: bool = False, progress: bool = True,
                 data: Optional[ImageData] = None, measure: Optional[Callable[..., Dict]] = None):
        """A run of `cfg` in the folder `out` on `data`: api.train gives the data, checked against what the model
        needs; without it the trainer reads the config's. resume: go on from the folder's newest checkpoint."""
        self.cfg, self.out, self.show_progress = cfg, Path(out), progress
        # the quality figures: (cfg, model, sample=, translate=) -> figures, handed in by whoever assembles the
        # run (api.train passes the metrics'), since training and metrics sit side by side; None records none
        self.measure = measure
        self.device, self.ranks = place(cfg.device)
        model_cls = get_model(cfg.model)
        state.prepare_run_folder(self.out)
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else load_dataset(cfg.data, size=cfg.size, needs=model_cls.needs,
                                                                alpha=cfg.get("alpha", False))
        # channels-last: the layout the CPU convolution kernels run fastest on (benchmarks/bench_train.py)
        self.model: GANModel = model_cls(cfg, self.data.info()).to(self.device, memory_format=torch.channels_last)
        self.phases = self.model.phases()
        self.groups = self.model.parameter_groups()
        self.optimizers = build_optimizers(self.groups, cfg.optim)
        self.schedulers = {name: Schedule(opt, cfg) for name, opt in self.optimizers.items()}
        self.precision = Precision(effective(cfg.precision, self.device), self.device, self.optimizers)
        if self.precision.name != cfg.precision:
            log.info("precision %s applies to GPU runs; this %s run trains in fp32", cfg.precision, self.device.type)
        # fixed after set-up, so worked out once rather than every step
        self.frozen = [[p for g in ph.frozen for net in self.groups[g] for p in net.parameters()] for ph in self.phases]
        self.ema_live = {n: getattr(self.model, n) for n in self.model.ema_nets}
        self.ema = EMA(self.ema_live, cfg.ema.beta, cfg.ema.start) if cfg.ema.beta > 0 else None
        if self.ranks.active:
            distributed.broadcast_parameters(self.all_nets())
            torch.manual_seed(distributed.rank_seed(cfg.seed, self.ranks.rank))
            self.sampler = distributed.ShardedSampler(self.data, cfg.batch_size, cfg.seed, self.device, self.ranks)
        else:
            self.sampler = BatchSampler(self.data, cfg.batch_size, cfg.seed, self.device)
        self.step, self.elapsed = 0, 0.0  # elapsed: seconds spent training, evaluation not counted
        self.eval_seconds = 0.0  # spent on quality figures by this process: outside --minutes and img/s
        self.best: Optional[tuple] = None  # (cfd, step)
        self.last_eval: Dict = {}
        self.lr_scale, self.divergences = 1.0, 0  # learning rates relative to the config's, roll-backs so far
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.board = None  # TensorBoard's writer (training/tensorboard.py), open over fit() on rank 0
        if resume:
            state.resume(self)
        elif self.ranks.main:
            self.metrics.path.write_text("")
        if self.ranks.main:
            (self.out / "config.yaml").write_text(config_mod.dump(cfg))
        # Where a divergence before the first checkpoint rolls back to. Kept in memory rather than written
        # as a step-0 checkpoint: a run folder then holds only states training reached, and `--out`
        # stays free for a new run until the first real checkpoint.
        self.start_state = None if checkpoint.list_checkpoints(self.out / "checkpoints") else self.snapshot()

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self) -> Dict:
        cfg = self.cfg
        budget = cfg.minutes * 60 if cfg.minutes else None
        progress = Progress(cfg.steps, self.step, cfg.minutes, enabled=self.show_progress and self.ranks.main)
        elapsed_before = self.elapsed
        self.model.train()
        threads_before = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(distributed.cpu_threads(cfg.threads, self.ranks))
        if self.ranks.main:
            self.board = open_board(cfg.log.tensorboard, self.out, self.step)
            if self.board:
                self.board.config(self.step, config_mod.dump(cfg))
        try:
            self._loop(progress, budget, elapsed_before)
            return self.finish()
        finally:
            torch.set_num_threads(threads_before)
            if self.board:
                self.board.close()

    def _loop(self, progress: Progress, budget: Optional[float], elapsed_before: float) -> None:
        cfg = self.cfg
        running: Dict[str, torch.Tensor] = {}
        images_seen, n_logged = 0, 0
        run, interval = _TrainingClock(self), _TrainingClock(self)
        try:
            while self.step < cfg.steps:
                if budget is not None and self._out_of_time(run.seconds() >= budget):
                    break
                drawn, finite = self._iteration(running)
                if not bool(finite):  # the one per-step host sync
                    state.roll_back(self)
                    if self.board:
                        self.board.restart(self.step)
                    running, images_seen, n_logged = {}, 0, 0
                    interval.reset()
                    continue
                images_seen += drawn
                self.step += 1
                n_logged += 1
                self.elapsed = elapsed_before + run.seconds()
                if cfg.log.every and self.step % cfg.log.every == 0 and self.ranks.main:
                    rate = images_seen / max(1e-9, interval.seconds())
                    logs = {k: float(v) / n_logged for k, v in running.items()}  # read the losses every log.every steps
                    record = {"kind": "train", "step": self.step, "time": round(self.elapsed, 2), "img_per_s": round(rate, 1),
                              **logs, **self._augment_record()}
                    self.metrics.write(record)
                    if self.board:
                        self.board.record(record, {n: o.param_groups[0]["lr"] for n, o in self.optimizers.items()})
                    progress.update(self.step, {k[: -len("/loss")]: v for k, v in logs.items() if k.endswith("/loss")}, rate)
                    running, images_seen, n_logged = {}, 0, 0
                    interval.reset()
                self._periodic()
        finally:
            progress.close()

    def _out_of_time(self, over: bool) -> bool:
        """Whether the time budget is spent; under DDP by rank 0's clock, which alone leaves out the time rank 0 spent
        evaluating (the other ranks wait for it meanwhile), shared so that all stop at one step."""
        if not self.ranks.active:
            return over
        flag = torch.tensor([1.0 if over and self.ranks.main else 0.0], device=self.device)
        return bool(distributed.all_sum(flag).item() > 0)

    def _iteration(self, running: Dict[str, torch.Tensor]) -> tuple:
        """One generator step with its discriminator steps -> (images drawn, a 0-dim bool tensor: all losses finite)."""
        ctx = StepContext(step=self.step)
        batch, drawn, losses = None, 0, []
        for phase, frozen in zip(self.phases, self.frozen):
            opt = self.optimizers[phase.name]
            for p in frozen:
                p.requires_grad_(False)
            for r in range(phase.repeat):
                if batch is None or phase.new_batch:
                    batch = self.sampler.next()
                    drawn += batch["image"].shape[0]
                ctx.repeat, ctx.last_repeat = r, r == phase.repeat - 1
                opt.zero_grad(set_to_none=True)
                with self.precision.autocast():
                    out = self.model.step(phase.name, batch, ctx)
                self.precision.backward(phase.name, out["loss"])
                losses.append(out["loss"].detach().reshape(-1))
                if self.ranks.active:
                    distributed.average_gradients((p for g in opt.param_groups for p in g["params"]), self.ranks.world)
                self.precision.step(phase.name, opt)
                self.model.after_step(phase.name)
                for k, v in out.items():
                    key = f"{phase.name}/{k}"
                    value = v.detach() / phase.repeat
                    running[key] = running[key] + value if key in running else value
            for p in frozen:
                p.requires_grad_(True)
        for sched in self.schedulers.values():
            sched.step()
        if self.ema is not None:
            self.ema.update(self.ema_live, self.step)
        self._adapt_augmentation()
        finite = torch.isfinite(torch.cat(losses)).all()
        if self._checkpoint_due(self.step + 1):  # a checkpoint must hold finite weights: check them too
            finite = finite & self._weights_finite()
        if self.ranks.active:
            distributed.broadcast_buffers(self.all_nets())
            finite = distributed.all_true(finite)  # every rank rolls back together
        return drawn, finite

    def _adapt_augmentation(self) -> None:
        """ADA (Karras 2020, section 3): once `augment.interval` D steps have read D's outputs on reals, move p by
        what every rank saw together. One host read per interval."""
        augment = self.model.augment
        if not (augment.adaptive and augment.due()):
            return
        totals = augment.totals()
        if self.ranks.active:
            distributed.all_sum(totals)
        augment.adjust(*totals.tolist())

    def _augment_record(self) -> Dict:
        """ADA's p and its last r_t, for metrics.jsonl and the loss plot."""
        augment = self.model.augment
        if not augment.adaptive:
            return {}
        return {"augment_p": augment.p, **({"augment_rt": augment.rt} if augment.rt is not None else {})}

    def _checkpoint_due(self, step: int) -> bool:
        every = self.cfg.checkpoint.every
        return step >= self.cfg.steps or bool(every and step % every == 0)

    def _weights_finite(self) -> torch.Tensor:
        params = [p for net in self.all_nets() for p in net.parameters()]
        return torch.stack([torch.isfinite(p).all() for p in params]).all() if params else torch.tensor(True)

    def _periodic(self) -> None:
        cfg, step = self.cfg, self.step
        if cfg.sample.every and step % cfg.sample.every == 0 and self.ranks.main:
            with self.aside():
                self._show(self.save_samples())
        if cfg.eval.every and step % cfg.eval.every == 0 and self.ranks.main and self._evaluation_affordable():
            with self.aside():
                self.evaluate()
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0:
            self.save_checkpoint()

    def _evaluation_affordable(self) -> bool:
        """A periodic evaluation runs while evaluating has taken at most `eval.share` of the time spent training,
        so FID on a CPU (seconds per evaluation) does not eat the run; the final evaluation always runs."""
        return self.eval_seconds <= self.cfg.eval.share * max(self.elapsed, 1e-9)

    def finish(self) -> Dict:
        with self.aside():
            if self.ranks.main and (not self.last_eval or self.last_eval.get("step") != self.step):
                self.evaluate()
            if self.ranks.main and not (self.out / "samples" / f"step_{self.step:06d}.png").exists():
                self._show(self.save_samples())
        path = self.save_checkpoint()
        if self.ranks.main:
            plot_losses(self.metrics.read(), self.out / "losses.png")
        return {
            "step": self.step,
            "minutes": self.elapsed / 60,
            "eval_minutes": self.eval_seconds / 60,
            "checkpoint": str(path),
            "samples": str(self.out / "samples" / f"step_{self.step:06d}.png"),
            "losses": str(self.out / "losses.png"),
            "metrics": {k: v for k, v in self.last_eval.items() if k not in ("kind", "step")},
        }

    # --- sampling and evaluation -----------------------------------------------------------------
    def aside(self):
        """Work beside training (samples, figures) draws from a forked RNG: whatever it builds or draws (a
        metric network's random initial weights, say) must not move the training stream, or a run that
        stops and resumes would continue from another state than the run that went straight on."""
        devices = [self.device] if self.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices)

    def sampling_nets(self) -> Optional[Dict[str, nn.Module]]:
        return self.ema.nets if self.ema is not None else None

    @torch.no_grad()
    def sample(self, n: int, seed: int, labels: Optional[torch.Tensor] = None, batch: int = 500) -> torch.Tensor:
        """Samples from fixed noise (their own generator: sampling never disturbs the training RNG)."""
        nets = self.sampling_nets()
        live = [m for m in (nets or {"G": self.model.G}).values()]
        modes = [m.training for m in live]
        for m in live:
            m.eval()
        try:
            return self.model.sample_seeded(n, seed, self.device, labels, nets=nets, batch=batch)
        finally:
            for m, mode in zip(live, modes):
                m.train(mode)

    def save_samples(self) -> Path:
        n = self.cfg.sample.n
        if self.model.translates:
            return self._save_translations(min(n, 16))
        labels = torch.arange(n, device=self.device) % self.model.n_classes if self.model.n_classes else None
        images = self.sample(n, seed=self.cfg.seed + 1, labels=labels)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        nrow = self.model.n_classes if self.model.n_classes and n % self.model.n_classes == 0 else None
        save_grid(images, path, nrow=nrow, scale=max(1, 64 // self.model.size))
        return path

    def _show(self, grid: Path) -> None:
        if self.board:
            self.board.image(self.step, grid)

    @torch.no_grad()
    def _save_translations(self, n: int) -> Path:
        """Image-to-image models: a grid of the same n training inputs next to their translations."""
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        was_training = self.model.training
        self.model.eval()
        try:
            images, nrow = self.model.preview(self.sampler.fixed_batch(n), nets=self.sampling_nets())
        finally:
            self.model.train(was_training)
        save_grid(images, path, nrow=nrow, scale=max(1, 64 // images.shape[-1]))
        return path

    def evaluate(self) -> Dict:
        """The quality figures of `eval.metrics`: `measure` gets what the model makes (samples from fixed noise, or
        a function translating held-out data), never the trainer."""
        if self.measure is None:
            return {}
        cfg, model = self.cfg, self.model

        def translate(test: ImageData):
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    return model.translations(test, nets=self.sampling_nets())
            finally:
                model.train(was_training)

        def sample(n: int):
            labels = torch.arange(n, device=self.device) % model.n_classes if model.n_classes else None
            return self.sample(n, seed=cfg.seed + 2, labels=labels), None if labels is None else labels.cpu()

        started = time.monotonic()
        record = self.measure(cfg, model, sample=sample, translate=translate)
        seconds = time.monotonic() - started
        self.eval_seconds += seconds
        if record:
            record = {"kind": "eval", "step": self.step, **record, "seconds": round(seconds, 1)}
            self.metrics.write(record)
            if self.board:
                self.board.record(record)
            self.last_eval = record
            if "cfd" in record and (self.best is None or record["cfd"] < self.best[0]):
                self.best = (record["cfd"], self.step)
        return record

    # --- checkpoints (training/state.py) ------------------------------------------------------------
    def all_nets(self) -> List[nn.Module]:
        """The model's checkpointed modules (G, D, F, D_X, history buffers, ...)."""
        return list(self.model.checkpointed_modules().values())

    def snapshot(self) -> tuple:
        """(tensors, meta) of the current state, copied: where a roll-back returns to."""
        return state.snapshot(self)

    def save_checkpoint(self) -> Path:
        return state.save_checkpoint(self)
