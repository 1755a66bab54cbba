"""Batches for the trainer: shuffled without replacement each epoch, on the device, as float [-1, 1].

The order is a pure function of (seed, epoch), so the sampler's whole state is two integers and a resumed
run draws exactly the batches an uninterrupted one would.
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
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.images.shape[0], generator=g).to(self.images.device)

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
        return batch

    def state_dict(self) -> Dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
