"""The training loop of the shipped judging classifiers (tools/train_digit_classifier.py and
tools/train_attribute_classifier.py): small, deterministic, and separate from the GAN trainer."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


def fit_classifier(build: Callable[[], nn.Module], images: torch.Tensor, targets: torch.Tensor,
                   loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor], *,
                   steps: int, seed: int, batch_size: int, lr: float) -> nn.Module:
    """Adam with a cosine-decayed learning rate for ``steps`` steps over shuffled epochs of ``images``
    (batches through ``augment``), scored by ``loss(logits, targets)``; returns the model in eval mode.

    Every random draw (the initial weights of ``build()``, the order, the augmentation) comes from ``seed``;
    the global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.train()
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.randperm(len(images), generator=generator)
        batch, order = order[:batch_size], order[batch_size:]
        value = loss(model(augment(images[batch], generator)), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
    return model.eval()
