"""Fully connected generator and discriminator (Goodfellow 2014; Mirza & Osindero 2014 with labels)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ganforge.nn.layers import one_hot


class MLPGenerator(nn.Module):
    """z (B, z_dim) [+ one-hot label] -> image (B, C, H, W) in [-1, 1]."""

    def __init__(self, z_dim: int, shape: Sequence[int], hidden: Sequence[int] = (256, 512, 1024), n_classes: int = 0):
        super().__init__()
        self.shape, self.n_classes = tuple(shape), n_classes
        layers, width = [], z_dim + n_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, int(torch.tensor(shape).prod())), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z, one_hot(labels, self.n_classes)], dim=1)
        return self.net(z).view(-1, *self.shape)


class MLPDiscriminator(nn.Module):
    """image [+ one-hot label] -> score (B,) (a logit, or a critic value for WGAN)."""

    def __init__(self, shape: Sequence[int], hidden: Sequence[int] = (512, 256), n_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.n_classes = n_classes
        layers, width = [], int(torch.tensor(shape).prod()) + n_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x.flatten(1)
        if self.n_classes:
            x = torch.cat([x, one_hot(labels, self.n_classes)], dim=1)
        return self.net(x).squeeze(1)
