"""Exponential moving average of generator weights (Karras et al. 2018; Yazici et al. 2019).

Averaged weights give visibly cleaner samples than the live generator, most of all early in training and
on small data. Buffers (batch-norm running statistics) are copied from the live network, not averaged.

The decay warms up as min(beta, (1 + t) / (10 + t)) (the num_updates rule of TensorFlow's
ExponentialMovingAverage): with a fixed beta of 0.999 the average would still carry the random initial
weights for the first thousand steps, which is most of a short CPU run.
"""
from __future__ import annotations

import copy
from typing import Dict, Iterable

import torch
from torch import nn


class EMA:
    def __init__(self, nets: Dict[str, nn.Module], beta: float, start: int = 0):
        self.beta, self.start = beta, start
        self.nets: Dict[str, nn.Module] = {name: copy.deepcopy(net).eval().requires_grad_(False) for name, net in nets.items()}

    @torch.no_grad()
    def update(self, nets: Dict[str, nn.Module], step: int) -> None:
        beta = 0.0 if step < self.start else min(self.beta, (1 + step - self.start) / (10 + step - self.start))
        for name, net in nets.items():
            avg = self.nets[name]
            for p_avg, p in zip(avg.parameters(), net.parameters()):
                p_avg.lerp_(p, 1.0 - beta)
            for b_avg, b in zip(avg.buffers(), net.buffers()):
                b_avg.copy_(b)

    def parameters(self) -> Iterable[torch.Tensor]:
        for net in self.nets.values():
            yield from net.parameters()
