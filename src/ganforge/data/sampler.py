"""Batches for the trainer: shuffled without replacement each epoch, on the device, as float [-1, 1].

The order is a pure function of (seed, epoch), so the sampler's whole state is two integers and a resumed
run draws exactly the batches an uninterrupted one would.

Two-domain data adds "image_b": for paired data the B image of the same index; for unpaired data a B image
from B's own shuffled order, which runs through its epochs independently of A (two more integers of state).
"""
from __future__ import annotations

from typing import Dict

import torch

from ganforge.data.base import ImageData, to_float


class BatchSampler:
    def __init__(self, data: ImageData, batch_size: int, seed: int, device: torch.device):
        self.batch_size = min(batch_size, len(data))
        self.seed = seed
        self.images = data.images.to(device)  # uint8 (N, C, H, W): the whole set lives on the device
        self.labels = data.labels.to(device) if data.labels is not None else None
        self.attributes = data.attributes.to(device) if data.attributes is not None else None
        self.images_b = data.images_b.to(device) if data.images_b is not None else None  # (M, C', H', W')
        self.unpaired = self.images_b is not None and not data.paired
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)
        if self.unpaired:
            self.batch_size = min(self.batch_size, self.images_b.shape[0])
            self.epoch_b, self.position_b = 0, 0
            self._order_b = self._permutation(0, domain=1)

    def _permutation(self, epoch: int, domain: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + domain * 500_009)
        n = (self.images if domain == 0 else self.images_b).shape[0]
        return torch.randperm(n, generator=g).to(self.images.device)

    def __len__(self) -> int:
        return self.images.shape[0] // self.batch_size

    def next(self) -> Dict[str, torch.Tensor]:
        if self.position + self.batch_size > self.images.shape[0]:  # drop the ragged tail
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        idx = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        batch = {"image": to_float(self.images[idx])}
        if self.labels is not None:
            batch["label"] = self.labels[idx]
        if self.attributes is not None:
            batch["attributes"] = self.attributes[idx]
        if self.images_b is not None:
            batch["image_b"] = to_float(self.images_b[self._next_b() if self.unpaired else idx])
        return batch

    def _next_b(self) -> torch.Tensor:
        if self.position_b + self.batch_size > self.images_b.shape[0]:
            self.epoch_b, self.position_b = self.epoch_b + 1, 0
            self._order_b = self._permutation(self.epoch_b, domain=1)
        idx = self._order_b[self.position_b : self.position_b + self.batch_size]
        self.position_b += self.batch_size
        return idx

    def fixed_batch(self, n: int) -> Dict[str, torch.Tensor]:
        """n examples spread evenly over the set (the same ones every time, without touching the order): the
        inputs of sample grids for image-to-image models."""
        def spread(total: int) -> torch.Tensor:
            k = min(n, total)
            return torch.arange(k, device=self.images.device) * total // k

        idx = spread(self.images.shape[0])
        batch = {"image": to_float(self.images[idx])}
        if self.images_b is not None:
            batch["image_b"] = to_float(self.images_b[spread(self.images_b.shape[0]) if self.unpaired else idx])
        return batch

    def state_dict(self) -> Dict[str, int]:
        state = {"epoch": self.epoch, "position": self.position}
        if self.unpaired:
            state.update(epoch_b=self.epoch_b, position_b=self.position_b)
        return state

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
        if self.unpaired:
            self.epoch_b, self.position_b = int(state["epoch_b"]), int(state["position_b"])
            self._order_b = self._permutation(self.epoch_b, domain=1)
