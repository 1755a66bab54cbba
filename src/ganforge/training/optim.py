"""Optimisers and learning-rate schedules: built from a config, their state's memory layout repaired after a
load, their rates lowered after a divergence."""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn


def build_optimizer(params: List[nn.Parameter], opt: Dict, fused: bool = True) -> torch.optim.Optimizer:
    """The optimiser a config names. Adam's fused kernel makes one pass over each tensor where torch's default
    makes several; ``fused=False`` (or torch < 2.4, which has no fused Adam for CPU tensors) gives the default."""
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


def build_optimizers(groups: Dict[str, List[nn.Module]], settings: Dict) -> Dict[str, torch.optim.Optimizer]:
    """One optimiser per parameter group of a model (name -> the networks it updates), as `settings[name]` says."""
    return {name: build_optimizer([p for net in nets for p in net.parameters()], settings[name])
            for name, nets in groups.items()}


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


def lr_factor(cfg, step: int) -> float:
    """The config's learning rates are multiplied by this at `step`: 1, or for linear_decay 1 until
    decay_start of the run, then linearly down to 0 at its last step (read when called: a resumed run's steps)."""
    s = cfg.schedule
    if s.kind == "constant":
        return 1.0
    start = int(s.decay_start * cfg.steps)
    return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, cfg.steps - start))


class Schedule:
    """An optimiser's learning-rate schedule, torch's LambdaLR rule: once per step every param group's rate
    becomes its ``initial_lr`` times `lr_factor` at that step. The base rates live in the param groups alone, so
    the optimiser state a checkpoint restores, or a roll-back lowers, is the whole of it; `last_step` is the
    schedule's own position, which a checkpoint records."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg):
        self.optimizer, self.cfg = optimizer, cfg
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.last_step = -1
        self.step()  # the rates of step 0

    def step(self) -> None:
        self.last_step += 1
        factor = lr_factor(self.cfg, self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def scale(self, ratio: float) -> None:
        """Every rate and base rate times `ratio`, from now on."""
        for group in self.optimizer.param_groups:
            group["lr"] *= ratio
            group["initial_lr"] *= ratio
