"""Mixed precision for GPU runs: autocast of every phase's forward pass, and gradient scaling for fp16.

    fp32  plain float32 everywhere (always, on a CPU)
    bf16  forward passes under bfloat16 autocast; bf16 has fp32's exponent range, so no loss scaling
    fp16  forward passes under float16 autocast; each phase's loss is scaled before backward and its
          optimiser step is skipped when the scaled gradients overflow (one GradScaler per phase, since
          the phases backpropagate and step separately)

The weights, optimiser state and checkpoints stay float32 in every mode, so a checkpoint trained on a GPU
in bf16 or fp16 samples on a CPU in fp32 like any other.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterable

import torch

from ganforge.errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def effective(name: str, device: torch.device) -> str:
    """The precision a run on `device` uses: a CPU run is fp32 whatever the config says (this CPU class
    has no native bf16, and autocast there costs more than it saves)."""
    if name not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got '{name}'")
    if device.type != "cuda":
        return "fp32"
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("precision bf16: this GPU has no bfloat16 support; use --set precision=fp16 (or fp32)")
    return name


class Precision:
    def __init__(self, name: str, device: torch.device, phases: Iterable[str]):
        if name not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got '{name}'")
        self.name, self.device_type, self.dtype = name, device.type, PRECISIONS[name]
        self.scalers: Dict[str, torch.amp.GradScaler] = (
            {p: torch.amp.GradScaler(device.type) for p in phases} if name == "fp16" else {})

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, phase: str, loss: torch.Tensor) -> None:
        scaler = self.scalers.get(phase)
        (scaler.scale(loss) if scaler else loss).backward()

    def step(self, phase: str, optimizer: torch.optim.Optimizer) -> None:
        """The optimiser step; under fp16 skipped when the gradients overflowed, and the scale adapts."""
        scaler = self.scalers.get(phase)
        if scaler is None:
            optimizer.step()
            return
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> Dict:
        return {p: s.state_dict() for p, s in self.scalers.items()}

    def load_state_dict(self, state: Dict) -> None:
        for p, s in self.scalers.items():
            if p in (state or {}):
                s.load_state_dict(state[p])
