"""The one training loop. Every GAN family runs through it; a family only says what its phases compute.

Per iteration: for each phase of the model (D repeated n_critic times, then G, by default) freeze the
networks the phase must not update, draw a batch where the phase asks for one, zero the phase's
gradients, run the model's step, backpropagate its "loss", step the optimiser and let the model act
after it (weight clipping). Then the schedules and the EMA advance one generator step.

Losses stay on the device and are summed there; the host reads them only every `log.every` steps.
Once per iteration the host asks one question: were all of this step's losses finite? If not, the run
rolls back to its last checkpoint (or its starting state) and retries with lower learning rates.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn

from ganforge import config as config_mod
from ganforge.data import ImageData, load_dataset
from ganforge.data.sampler import BatchSampler
from ganforge.errors import UserError
from ganforge.imaging.grid import save_grid
from ganforge.models import GANModel, StepContext, get_model
from ganforge.models.base import AVERAGED, load_module_tensors, module_tensors
from ganforge.training import checkpoint, distributed
from ganforge.training.ema import EMA
from ganforge.training.precision import Precision, effective
from ganforge.training.report import MetricsLog, Progress, plot_losses

log = logging.getLogger("ganforge")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown --device '{name}': use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: ganforge runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is visible to torch here; use --device cpu")
    return device


def build_optimizer(params: List[nn.Parameter], opt: Dict, fused: bool = True) -> torch.optim.Optimizer:
    """The optimiser a config names. Adam's fused kernel makes one pass over each tensor where torch's default
    makes about ten: on a CPU the default's update was a quarter of an MLP GAN's step. ``fused=False`` (or
    torch < 2.4, which has no fused Adam for CPU tensors) gives the default."""
    name, lr, wd = opt["name"], opt["lr"], opt.get("weight_decay", 0.0)
    if name == "adam":
        settings = {"lr": lr, "betas": tuple(opt.get("betas", (0.9, 0.999))), "weight_decay": wd}
        if fused:
            try:
                return torch.optim.Adam(params, fused=True, **settings)
            except (RuntimeError, TypeError, ValueError):
                pass
        return torch.optim.Adam(params, **settings)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=opt.get("momentum", 0.0), weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=opt.get("momentum", 0.0), weight_decay=wd)


def match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor its parameter's memory layout. Checkpoints store tensors contiguous
    and the networks train channels-last; fused Adam walks a parameter and its moments in memory order, so a
    moment left in the other layout would be updated against the wrong elements."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p).copy_(value)


def check_data(model_cls, data: ImageData) -> None:
    if model_cls.needs == "labels" and data.labels is None:
        raise UserError(f"{model_cls.name} is class-conditional but '{data.name}' has no labels: give a folder with one sub-folder per class")
    if model_cls.needs in ("paired", "unpaired") and data.images_b is None:
        raise UserError(f"{model_cls.name} needs two image domains; '{data.name}' has one")
    if model_cls.needs == "attributes" and data.attributes is None:
        raise UserError(f"{model_cls.name} needs attribute labels; '{data.name}' has none")


class Trainer:
    def __init__(self, cfg: config_mod.Config, out: Path, *, resume: bool = False, progress: bool = True,
                 data: Optional[ImageData] = None):
        self.cfg, self.out, self.show_progress = cfg, Path(out), progress
        self.device = pick_device(cfg.device)
        self.ranks = distributed.from_env(self.device.type)
        if self.ranks.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.ranks.local_rank)
        model_cls = get_model(cfg.model)
        self._prepare_out_dir()
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else load_dataset(cfg.data, size=cfg.size, needs=model_cls.needs)
        check_data(model_cls, self.data)
        # channels-last: the convolution kernels run ~15% faster on this layout on CPU (benchmarks/bench_train.py)
        self.model: GANModel = model_cls(cfg, self.data.info()).to(self.device, memory_format=torch.channels_last)
        self.phases = self.model.phases()
        self.groups = self.model.parameter_groups()
        self.optimizers = {
            name: build_optimizer([p for net in nets for p in net.parameters()], cfg.optim[name])
            for name, nets in self.groups.items()
        }
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor) for name, opt in self.optimizers.items()}
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
        self.step, self.elapsed = 0, 0.0
        self.best: Optional[tuple] = None  # (cfd, step)
        self.last_eval: Dict = {}
        self.lr_scale, self.divergences = 1.0, 0  # learning rates relative to the config's, roll-backs so far
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        if resume:
            self._resume()
        elif self.ranks.main:
            self.metrics.path.write_text("")
        if self.ranks.main:
            (self.out / "config.yaml").write_text(config_mod.dump(cfg))
        # Where a divergence before the first checkpoint rolls back to. Kept in memory rather than written
        # as a step-0 checkpoint: a run folder then holds only states training reached, and `--out`
        # stays free for a new run until the first real checkpoint.
        self._start_state = None if checkpoint.list_checkpoints(self.out / "checkpoints") else self.snapshot()

    # --- set-up ---------------------------------------------------------------------------------
    def _prepare_out_dir(self) -> None:
        try:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            (self.out / "checkpoints").mkdir(exist_ok=True)
            probe = self.out / f".write-test-{os.getpid()}"  # one per process: ranks probe at once
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"cannot write to --out '{self.out}': {e.strerror or e}") from None

    def _lr_factor(self, step: int) -> float:
        s = self.cfg.schedule
        if s.kind == "constant":
            return 1.0
        start = int(s.decay_start * self.cfg.steps)
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, self.cfg.steps - start))

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self) -> Dict:
        cfg = self.cfg
        budget = cfg.minutes * 60 if cfg.minutes else None
        progress = Progress(cfg.steps, self.step, cfg.minutes, enabled=self.show_progress and self.ranks.main)
        t_start, elapsed_before = time.monotonic(), self.elapsed
        self.model.train()
        threads_before = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(distributed.cpu_threads(cfg.threads, self.ranks))
        try:
            self._loop(progress, budget, t_start, elapsed_before)
            return self.finish()
        finally:
            torch.set_num_threads(threads_before)

    def _loop(self, progress: Progress, budget: Optional[float], t_start: float, elapsed_before: float) -> None:
        cfg = self.cfg
        running: Dict[str, torch.Tensor] = {}
        images_seen, t_log, n_logged = 0, time.monotonic(), 0
        try:
            while self.step < cfg.steps:
                if budget is not None and self._out_of_time(time.monotonic() - t_start >= budget):
                    break
                drawn, finite = self._iteration(running)
                if not bool(finite):  # the one per-step host sync
                    self._roll_back()
                    running, images_seen, t_log, n_logged = {}, 0, time.monotonic(), 0
                    continue
                images_seen += drawn
                self.step += 1
                n_logged += 1
                self.elapsed = elapsed_before + time.monotonic() - t_start
                if cfg.log.every and self.step % cfg.log.every == 0 and self.ranks.main:
                    rate = images_seen / max(1e-9, time.monotonic() - t_log)
                    logs = {k: float(v) / n_logged for k, v in running.items()}  # read the losses every log.every steps
                    self.metrics.write({"kind": "train", "step": self.step, "time": round(self.elapsed, 2), "img_per_s": round(rate, 1), **logs})
                    progress.update(self.step, {k[: -len("/loss")]: v for k, v in logs.items() if k.endswith("/loss")}, rate)
                    running, images_seen, t_log, n_logged = {}, 0, time.monotonic(), 0
                self._periodic()
        finally:
            progress.close()

    def _out_of_time(self, over: bool) -> bool:
        """Whether the time budget is spent; under DDP, as soon as it is on any rank (all stop at one step)."""
        if not self.ranks.active:
            return over
        return not bool(distributed.all_true(torch.tensor(not over, device=self.device)))

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
        finite = torch.isfinite(torch.cat(losses)).all()
        if self._checkpoint_due(self.step + 1):  # a checkpoint must hold finite weights: check them too
            finite = finite & self._weights_finite()
        if self.ranks.active:
            distributed.broadcast_buffers(self.all_nets())
            finite = distributed.all_true(finite)  # every rank rolls back together
        return drawn, finite

    def _checkpoint_due(self, step: int) -> bool:
        every = self.cfg.checkpoint.every
        return step >= self.cfg.steps or bool(every and step % every == 0)

    def _weights_finite(self) -> torch.Tensor:
        params = [p for net in self.all_nets() for p in net.parameters()]
        return torch.stack([torch.isfinite(p).all() for p in params]).all() if params else torch.tensor(True)

    def _roll_back(self) -> None:
        """Back to the newest checkpoint (or the starting state), with every learning rate times lr_factor."""
        div, failed = self.cfg.divergence, self.step + 1
        if self.divergences >= div.retries:
            raise UserError(
                f"training diverged at step {failed} (a non-finite loss or weight) after {self.divergences} roll-backs "
                f"with lower learning rates; lower optim.*.lr or raise divergence.retries"
            )
        self.divergences += 1
        scale = self.lr_scale * div.lr_factor
        found = checkpoint.list_checkpoints(self.out / "checkpoints")
        if found:
            tensors, meta = checkpoint.load(str(found[-1][1]), device=str(self.device))
        else:
            tensors, meta = self._start_state
        load_run_state(self, tensors, meta)
        ratio, self.lr_scale = scale / self.lr_scale, scale  # the state just loaded ran at its own lr_scale
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] *= ratio
                group["initial_lr"] *= ratio
            sched = self.schedulers[name]
            sched.base_lrs = [g["initial_lr"] for g in opt.param_groups]
            sched._last_lr = [g["lr"] for g in opt.param_groups]
        if self.ranks.main:
            self.metrics.truncate_after(self.step)
            log.warning("step %d: non-finite loss or weight; rolled back to step %d with every learning rate x%g "
                        "(now x%g of the config's; retry %d of %d)", failed, self.step, div.lr_factor, scale,
                        self.divergences, div.retries)

    def _periodic(self) -> None:
        cfg, step = self.cfg, self.step
        if cfg.sample.every and step % cfg.sample.every == 0 and self.ranks.main:
            with self.aside():
                self.save_samples()
        if cfg.eval.every and step % cfg.eval.every == 0 and self.ranks.main:
            with self.aside():
                self.evaluate()
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0:
            self.save_checkpoint()

    def finish(self) -> Dict:
        with self.aside():
            if self.ranks.main and (not self.last_eval or self.last_eval.get("step") != self.step):
                self.evaluate()
            if self.ranks.main and not (self.out / "samples" / f"step_{self.step:06d}.png").exists():
                self.save_samples()
        path = self.save_checkpoint()
        if self.ranks.main:
            plot_losses(self.metrics.read(), self.out / "losses.png")
        return {
            "step": self.step,
            "minutes": self.elapsed / 60,
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
        from ganforge.metrics.training import metrics_for_run

        record = metrics_for_run(self, self.cfg.eval.metrics, self.cfg.eval.n)
        if record:
            record = {"kind": "eval", "step": self.step, **record}
            self.metrics.write(record)
            self.last_eval = record
            if "cfd" in record and (self.best is None or record["cfd"] < self.best[0]):
                self.best = (record["cfd"], self.step)
        return record

    # --- checkpoints -------------------------------------------------------------------------------
    def state_tensors(self) -> tuple:
        tensors: Dict[str, torch.Tensor] = {}
        meta: Dict = {"optimizers": {}, "schedulers": {}}
        tensors.update(module_tensors(self.model.checkpointed_modules()))
        if self.ema is not None:
            tensors.update(module_tensors(self.ema.nets, AVERAGED))
        for name, opt in self.optimizers.items():
            t, m = checkpoint.split_optimizer_state(f"optim.{name}", opt.state_dict())
            tensors.update(t)
            meta["optimizers"][name] = m
            meta["schedulers"][name] = self.schedulers[name].last_epoch
        tensors["rng.torch"] = torch.get_rng_state()
        if self.ranks.active:  # every rank's stream, so that a resumed run draws what it would have
            tensors.update({f"rng.torch.rank{r}": state for r, state in enumerate(distributed.gather_rng(self.device))})
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return tensors, meta

    def all_nets(self) -> List[nn.Module]:
        """The model's checkpointed modules (G, D, F, D_X, history buffers, ...)."""
        return list(self.model.checkpointed_modules().values())

    def run_meta(self, meta: Dict) -> Dict:
        """state_tensors' meta with everything else a checkpoint records."""
        meta.update({
            "model": self.cfg.model,
            "config": self.cfg.to_dict(),
            "data": self.data.info(),
            "sampler": self.sampler.state_dict(),
            "elapsed": self.elapsed,
            "best": list(self.best) if self.best else None,
            "metrics": {k: v for k, v in self.last_eval.items() if k != "kind"},
            "lr_scale": self.lr_scale,
            "grad_scalers": self.precision.state_dict(),
        })
        return meta

    def snapshot(self) -> tuple:
        """(tensors, meta) of the current state, copied, in the form load_run_state takes."""
        tensors, meta = self.state_tensors()
        meta = copy.deepcopy(self.run_meta(meta))
        meta["step"] = self.step
        return {k: v.detach().clone() for k, v in tensors.items()}, meta

    def save_checkpoint(self) -> Path:
        tensors, meta = self.state_tensors()
        meta = self.run_meta(meta)
        folder = self.out / "checkpoints"
        path, error = folder / f"step_{self.step:06d}.json", None
        if self.ranks.main:
            try:
                path = checkpoint.save(folder, self.step, tensors, meta)
            except OSError as e:
                error = e.strerror or str(e)
        # the other ranks wait for the write (a roll-back may read it) and learn whether it failed
        if self.ranks.active and not bool(distributed.all_true(torch.tensor(error is None, device=self.device))):
            error = error or "it failed on rank 0"
        if error:
            raise UserError(f"could not write a checkpoint to {folder}: {error}; the previous checkpoint is intact")
        if self.ranks.main:
            checkpoint.prune(folder, self.cfg.checkpoint.keep, protect=self.best[1] if self.best else None)
        return path

    def _resume(self) -> None:
        found = checkpoint.list_checkpoints(self.out / "checkpoints")
        if not found:
            raise UserError(f"--resume: no checkpoint in '{self.out / 'checkpoints'}' to resume from")
        tensors, meta = checkpoint.load(str(found[-1][1]), device=str(self.device))
        if meta["model"] != self.cfg.model:
            raise UserError(f"--resume: '{self.out}' holds a {meta['model']} run, not {self.cfg.model}")
        load_run_state(self, tensors, meta)
        if self.ranks.main:
            self.metrics.truncate_after(self.step)


def load_run_state(trainer: Trainer, tensors: Dict[str, torch.Tensor], meta: Dict) -> None:
    """Put a trainer back exactly where a checkpoint left it: weights, EMA, optimisers, schedules, RNG, data order."""
    load_module_tensors(trainer.model.checkpointed_modules(), tensors)
    if trainer.ema is not None:
        load_module_tensors(trainer.ema.nets, tensors, (AVERAGED,))
    for name, opt in trainer.optimizers.items():
        opt.load_state_dict(checkpoint.join_optimizer_state(f"optim.{name}", tensors, meta["optimizers"][name]))
        match_layouts(opt)
        trainer.schedulers[name].last_epoch = meta["schedulers"][name]
        # the schedule restarts from the stored base rates (lowered, if the run rolled back from a divergence)
        trainer.schedulers[name].base_lrs = [g["initial_lr"] for g in opt.param_groups]
        trainer.schedulers[name]._last_lr = [g["lr"] for g in opt.param_groups]
    torch.set_rng_state(tensors.get(f"rng.torch.rank{trainer.ranks.rank}", tensors["rng.torch"]).cpu())
    if "rng.cuda" in tensors and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), trainer.device)
    trainer.sampler.load_state_dict(meta["sampler"])
    trainer.step, trainer.elapsed = meta["step"], meta.get("elapsed", 0.0)
    trainer.best = tuple(meta["best"]) if meta.get("best") else None
    trainer.lr_scale = meta.get("lr_scale", 1.0)
    trainer.precision.load_state_dict(meta.get("grad_scalers"))
    trainer.last_eval = dict(meta.get("metrics") or {})
