"""Several processes, one run: data parallelism set up from torchrun's environment (RANK, WORLD_SIZE, ...).

    torchrun --nproc_per_node=2 -m ganforge train dcgan ...

Every rank builds the same networks from the same seed and keeps them equal: after each backward pass
the gradients of the phase's networks are averaged over the ranks (one all-reduce per optimiser step, on
one flat buffer), and batch-norm buffers follow rank 0 after each iteration. A global batch of
world x batch_size indices is drawn from the one shuffled order; rank r takes every world-th index from
the r-th, so the run sees what one process with world x the batch would. Noise differs per rank (each
has its own RNG stream, all saved in checkpoints). Rank 0 alone writes logs, samples and checkpoints;
the others wait on it, so a failed write stops every rank with the same message instead of a hang.
nccl on GPUs, gloo on CPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import torch
import torch.distributed as dist
from torch import nn

from ganforge.data.base import ImageData
from ganforge.data.sampler import BatchSampler


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(device_type: str) -> Ranks:
    """The process's place in the run; joins the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cpu_threads(threads: Optional[int], ranks: Ranks) -> int:
    """CPU threads for one process: the configured count, else torch's own shared among this machine's ranks
    (torchrun's LOCAL_WORLD_SIZE), so that the ranks do not fight over the cores."""
    if threads:
        return threads
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if ranks.active else 1
    return max(1, torch.get_num_threads() // local)


def rank_seed(seed: int, rank: int) -> int:
    """Each rank's own RNG stream (noise, augmentation), distinct from the others' and from seed's neighbours."""
    return seed * 1_000_003 + 7_919 * rank


def average_gradients(params: Iterable[nn.Parameter], world: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_buffers(modules: Iterable[nn.Module]) -> None:
    """Batch-norm running statistics (and any other buffer) as rank 0 has them: the networks stay equal."""
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


def broadcast_parameters(modules: Iterable[nn.Module]) -> None:
    for module in modules:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor summed over the ranks, in place (ADA's statistics of D's verdicts on each rank's reals)."""
    dist.all_reduce(tensor)
    return tensor


def all_true(flag: torch.Tensor) -> torch.Tensor:
    """A 0-dim bool that is true only where it is true on every rank."""
    value = flag.to(torch.int32).reshape(1)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return value[0].bool()


def gather_rng(device: torch.device) -> List[torch.Tensor]:
    """Every rank's torch RNG state (each rank gets the list; rank 0 saves it)."""
    state = torch.get_rng_state().to(device)
    states = [torch.empty_like(state) for _ in range(dist.get_world_size())]
    dist.all_gather(states, state)
    return [s.cpu() for s in states]


class ShardedSampler(BatchSampler):
    """Rank r's share of the global batch: every world-th example of it, from the r-th."""

    def __init__(self, data: ImageData, batch_size: int, seed: int, device: torch.device, ranks: Ranks):
        super().__init__(data, batch_size * ranks.world, seed, device)
        self.ranks = ranks

    def next(self) -> Dict[str, torch.Tensor]:
        batch = super().next()
        return {k: v[self.ranks.rank :: self.ranks.world] for k, v in batch.items()}
