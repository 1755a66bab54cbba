"""Where a run computes: the device a config or flag names, checked, and under DDP each rank's own GPU."""
from __future__ import annotations

from typing import Tuple

import torch

from ganforge.errors import UserError
from ganforge.training import distributed


def pick_device(name: str) -> torch.device:
    """"auto" (a GPU when torch sees one), "cpu", "cuda" or "cuda:N"; anything else is one UserError line."""
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


def place(name: str) -> Tuple[torch.device, distributed.Ranks]:
    """The device a training process runs on and its place among the ranks (joining the process group when
    torchrun started several); each rank of a GPU run takes the GPU of its local rank."""
    device = pick_device(name)
    ranks = distributed.from_env(device.type)
    if ranks.active and device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
    return device, ranks
