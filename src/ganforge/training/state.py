"""The state of a run that a checkpoint holds, and the three ways back into one: resume from the newest
checkpoint, roll back to it (or to the starting state) after a divergence, and save.

A run's state: the model's checkpointed modules and their EMA, each optimiser's state and schedule position,
every RNG stream, the data order, the step and time so far, the best and last quality figures, the learning
rates' scale after roll-backs, the gradient scalers, and adaptive augmentation's p with the statistics that
move it next. The functions take the trainer (training/trainer.py) that holds it all.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Dict, Optional

import torch

from ganforge.errors import UserError
from ganforge.models.base import AVERAGED, load_module_tensors, module_tensors
from ganforge.training import checkpoint, distributed
from ganforge.training.optim import match_layouts

log = logging.getLogger("ganforge")


def prepare_run_folder(out: Path) -> None:
    """Make the run folder's samples/ and checkpoints/, and check that it is writable: one UserError line if not."""
    try:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints").mkdir(exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"  # one per process: ranks probe at once
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to --out '{out}': {e.strerror or e}") from None


def state_tensors(trainer) -> tuple:
    """(tensors, meta) of the state that lives in tensors: weights, EMA, optimisers, schedules, RNG streams."""
    tensors: Dict[str, torch.Tensor] = {}
    meta: Dict = {"optimizers": {}, "schedulers": {}}
    tensors.update(module_tensors(trainer.model.checkpointed_modules()))
    if trainer.ema is not None:
        tensors.update(module_tensors(trainer.ema.nets, AVERAGED))
    for name, opt in trainer.optimizers.items():
        t, m = checkpoint.split_optimizer_state(f"optim.{name}", opt.state_dict())
        tensors.update(t)
        meta["optimizers"][name] = m
        meta["schedulers"][name] = trainer.schedulers[name].last_step
    tensors["rng.torch"] = torch.get_rng_state()
    if trainer.ranks.active:  # every rank's stream, so that a resumed run draws what it would have
        tensors.update({f"rng.torch.rank{r}": state for r, state in enumerate(distributed.gather_rng(trainer.device))})
    if trainer.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.device)
    return tensors, meta


def run_meta(trainer, meta: Dict) -> Dict:
    """state_tensors' meta with everything else a checkpoint records."""
    meta.update({
        "model": trainer.cfg.model,
        "config": trainer.cfg.to_dict(),
        "data": trainer.data.info(),
        "sampler": trainer.sampler.state_dict(),
        "elapsed": trainer.elapsed,
        "best": list(trainer.best) if trainer.best else None,
        "metrics": {k: v for k, v in trainer.last_eval.items() if k != "kind"},
        "lr_scale": trainer.lr_scale,
        "grad_scalers": trainer.precision.state_dict(),
        "augment": augment_state(trainer),
    })
    return meta


def augment_state(trainer) -> Optional[Dict]:
    """ADA's p and the statistics gathered towards its next move (None without ADA). Under DDP rank 0 holds every
    rank's statistics summed and the others none, so the sum at the next move is the same and one file holds it."""
    augment = trainer.model.augment
    if not augment.adaptive:
        return None
    if trainer.ranks.active:
        totals = distributed.all_sum(augment.totals())
        augment.hold(totals if trainer.ranks.main else torch.zeros_like(totals))
    return augment.state()


def snapshot(trainer) -> tuple:
    """(tensors, meta) of the current state, copied, in the form load_run_state takes."""
    tensors, meta = state_tensors(trainer)
    meta = copy.deepcopy(run_meta(trainer, meta))
    meta["step"] = trainer.step
    return {k: v.detach().clone() for k, v in tensors.items()}, meta


def save_checkpoint(trainer) -> Path:
    """Write the run's state as the checkpoint of its step (rank 0; the other ranks wait for it), then prune."""
    tensors, meta = state_tensors(trainer)
    meta = run_meta(trainer, meta)
    folder = trainer.out / "checkpoints"
    path, error = folder / f"step_{trainer.step:06d}.json", None
    if trainer.ranks.main:
        try:
            path = checkpoint.save(folder, trainer.step, tensors, meta)
        except OSError as e:
            error = e.strerror or str(e)
    # the other ranks wait for the write (a roll-back may read it) and learn whether it failed
    if trainer.ranks.active and not bool(distributed.all_true(torch.tensor(error is None, device=trainer.device))):
        error = error or "it failed on rank 0"
    if error:
        raise UserError(f"could not write a checkpoint to {folder}: {error}; the previous checkpoint is intact")
    if trainer.ranks.main:
        checkpoint.prune(folder, trainer.cfg.checkpoint.keep, protect=trainer.best[1] if trainer.best else None)
    return path


def resume(trainer) -> None:
    """Continue the run in the trainer's folder from its newest checkpoint."""
    found = checkpoint.list_checkpoints(trainer.out / "checkpoints")
    if not found:
        raise UserError(f"--resume: no checkpoint in '{trainer.out / 'checkpoints'}' to resume from")
    tensors, meta = checkpoint.load(str(found[-1][1]), device=str(trainer.device))
    if meta["model"] != trainer.cfg.model:
        raise UserError(f"--resume: '{trainer.out}' holds a {meta['model']} run, not {trainer.cfg.model}")
    load_run_state(trainer, tensors, meta)
    if trainer.ranks.main:
        trainer.metrics.truncate_after(trainer.step)


def roll_back(trainer) -> None:
    """Back to the newest checkpoint (or the starting state), with every learning rate times divergence.lr_factor;
    after divergence.retries roll-backs, one UserError line."""
    div, failed = trainer.cfg.divergence, trainer.step + 1
    if trainer.divergences >= div.retries:
        raise UserError(
            f"training diverged at step {failed} (a non-finite loss or weight) after {trainer.divergences} roll-backs "
            f"with lower learning rates; lower optim.*.lr or raise divergence.retries"
        )
    trainer.divergences += 1
    scale = trainer.lr_scale * div.lr_factor
    found = checkpoint.list_checkpoints(trainer.out / "checkpoints")
    if found:
        tensors, meta = checkpoint.load(str(found[-1][1]), device=str(trainer.device))
    else:
        tensors, meta = trainer.start_state
    load_run_state(trainer, tensors, meta)
    ratio, trainer.lr_scale = scale / trainer.lr_scale, scale  # the state just loaded ran at its own lr_scale
    for schedule in trainer.schedulers.values():
        schedule.scale(ratio)
    if trainer.ranks.main:
        trainer.metrics.truncate_after(trainer.step)
        log.warning("step %d: non-finite loss or weight; rolled back to step %d with every learning rate x%g "
                    "(now x%g of the config's; retry %d of %d)", failed, trainer.step, div.lr_factor, scale,
                    trainer.divergences, div.retries)


def load_run_state(trainer, tensors: Dict[str, torch.Tensor], meta: Dict) -> None:
    """Put a trainer back exactly where a checkpoint left it: weights, EMA, optimisers, schedules, RNG, data order."""
    load_module_tensors(trainer.model.checkpointed_modules(), tensors, model=trainer.cfg.model)
    if trainer.ema is not None:
        load_module_tensors(trainer.ema.nets, tensors, (AVERAGED,))
    for name, opt in trainer.optimizers.items():
        # the param groups' rates and base rates come back with the state (lowered, if the run rolled back)
        opt.load_state_dict(checkpoint.join_optimizer_state(f"optim.{name}", tensors, meta["optimizers"][name]))
        match_layouts(opt)
        trainer.schedulers[name].last_step = meta["schedulers"][name]
    torch.set_rng_state(tensors.get(f"rng.torch.rank{trainer.ranks.rank}", tensors["rng.torch"]).cpu())
    if "rng.cuda" in tensors and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), trainer.device)
    trainer.sampler.load_state_dict(meta["sampler"])
    trainer.step, trainer.elapsed = meta["step"], meta.get("elapsed", 0.0)
    trainer.best = tuple(meta["best"]) if meta.get("best") else None
    trainer.lr_scale = meta.get("lr_scale", 1.0)
    trainer.precision.load_state_dict(meta.get("grad_scalers"))
    trainer.last_eval = dict(meta.get("metrics") or {})
    augment = trainer.model.augment
    if augment.adaptive and meta.get("augment"):
        augment.load_state(meta["augment"])
        if not trainer.ranks.main:  # rank 0 holds every rank's statistics (augment_state)
            augment.hold(torch.zeros_like(augment.totals()))
