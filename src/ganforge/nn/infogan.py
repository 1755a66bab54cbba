"""InfoGAN's discriminator: D's convolutional body shared by D's real/fake score and a head Q of its own.

Chen et al. 2016 (appendix C.1): "Q and D share all convolutional layers", then Q takes one fully connected layer
of 128 units with batch norm and leaky ReLU before its outputs. Q's layers are never spectrally normalised, even
where D's body is: Q is a reader of the codes, not a critic that must stay Lipschitz.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ganforge.nn.dcgan import DCGANDiscriminator
from ganforge.nn.layers import dcgan_init


class QHead(nn.Module):
    """D's flattened features (B, F) -> Q's outputs (B, n_out): one hidden layer, batch norm, leaky ReLU."""

    def __init__(self, n_features: int, n_out: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, n_out))
        dcgan_init(self)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class InfoGANDiscriminator(nn.Module):
    """(B, C, size, size) -> (B, 1 + n_q): D's real/fake score, then Q's outputs, from one shared body."""

    def __init__(self, channels: int, size: int, width: int, norm: str, n_q: int, q_hidden: int = 128):
        super().__init__()
        self.body = DCGANDiscriminator(channels, size, width, norm)
        self.q = QHead(self.body.head.in_features, n_q, q_hidden)
        self.uses_batch_norm = True  # Q's batch norm must see real and fake apart (GANModel.score_pair)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.body.features(x).flatten(1)  # (B, F)
        return torch.cat([self.body.head(h), self.q(h)], dim=1)
