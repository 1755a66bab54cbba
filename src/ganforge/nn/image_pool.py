"""The history of generated images the CycleGAN discriminators learn from (Shrivastava et al. 2017;
Zhu et al. 2017, section 4: a buffer of the 50 last generated images).

A discriminator that sees only the latest generator's output can be fooled by a generator that hops
between modes; showing it older fakes too damps that oscillation. `query` fills the pool with the first
`capacity` images it is given and returns them unchanged; once full, each new image is, with probability
`p`, swapped with a random stored one (the old one goes to D, the new one stays), else passed through.

The pool is a module whose buffer holds the images, so checkpoints save it and a resumed run continues
with exactly the same history. Draws come from torch's global CPU generator, which checkpoints also save,
and decisions are made on the host from that generator: no device synchronisation per step.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ImagePool(nn.Module):
    def __init__(self, capacity: int, shape: Sequence[int], p: float = 0.5):
        super().__init__()
        self.capacity, self.p = int(capacity), float(p)
        self.register_buffer("images", torch.zeros(self.capacity, *shape))  # (capacity, C, H, W)
        self.filled = 0

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch for D (B, C, H, W): the new images, some of them exchanged for older ones."""
        images = images.detach()
        if self.capacity == 0:
            return images
        out = images.clone()
        n = images.shape[0]
        take = min(n, self.capacity - self.filled)
        if take:
            self.images[self.filled : self.filled + take] = images[:take]
            self.filled += take
        rest = n - take
        if rest:
            swap = (torch.rand(rest) < self.p).tolist()
            slots = torch.randint(0, self.capacity, (rest,)).tolist()
            for j in range(rest):  # one at a time: two draws of the same slot see each other's writes
                if swap[j]:
                    i, s = take + j, slots[j]
                    out[i] = self.images[s]
                    self.images[s] = images[i]
        return out

    # `filled` travels with the state dict, so `load_state_dict` restores the pool exactly.
    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor(self.filled, dtype=torch.int64)

    def set_extra_state(self, state) -> None:
        self.filled = int(state)
