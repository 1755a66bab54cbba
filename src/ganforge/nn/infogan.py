"""InfoGAN's networks: D's convolutional body shared by D's real/fake score and a head Q of its own, and G.

Chen et al. 2016 (appendix C.1, table 1): "Q and D share all convolutional layers", then Q takes one fully
connected layer of 128 units with batch norm and leaky ReLU before its outputs. Q's layers are never spectrally
normalised, even where D's body is: Q is a reader of the codes, not a critic that must stay Lipschitz. On MNIST
both G and D also have a fully connected layer of 1024 units next to the latent and the score (`fc`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.nn.layers import dcgan_init, with_norm


class QHead(nn.Module):
    """D's flattened features (B, F) -> Q's outputs (B, n_out): one hidden layer, batch norm, leaky ReLU."""

    def __init__(self, n_features: int, n_out: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden, bias=False), nn.BatchNorm1d(hidden),
                                 nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, n_out))
        dcgan_init(self)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def fully_connected(n_in: int, n_out: int, act: nn.Module, norm: str = "batch") -> nn.Sequential:
    """Table 1's "FC n_out, batch norm" layer; spectral norm in place of batch norm where D takes it."""
    if norm == "batch":
        return nn.Sequential(nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), act)
    return nn.Sequential(with_norm(nn.Linear(n_in, n_out), norm), act)


class InfoGANGenerator(nn.Module):
    """z (B, z_dim) -> (B, C, size, size) in [-1, 1]: table 1's FC 1024 (batch norm, ReLU), then DCGAN's G."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, fc: int = 1024):
        super().__init__()
        self.fc = fully_connected(z_dim, fc, nn.ReLU(inplace=True))
        dcgan_init(self.fc)
        self.net = DCGANGenerator(fc, channels, size, width)

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(self.fc(z))


class InfoGANDiscriminator(nn.Module):
    """(B, C, size, size) -> (B, 1 + n_q): D's real/fake score, then Q's outputs, from one shared body; with fc,
    the body ends in a fully connected layer of that many units (table 1's FC 1024) that both heads read."""

    def __init__(self, channels: int, size: int, width: int, norm: str, n_q: int, q_hidden: int = 128, fc: int = 0):
        super().__init__()
        self.body = DCGANDiscriminator(channels, size, width, norm)
        n_features = self.body.head.in_features
        self.fc = None
        if fc:
            self.fc = fully_connected(n_features, fc, nn.LeakyReLU(0.2, inplace=True), norm)
            self.body.head = with_norm(nn.Linear(fc, 1), norm)
            dcgan_init(self.fc)
            dcgan_init(self.body.head)
            n_features = fc
        self.q = QHead(n_features, n_q, q_hidden)
        self.uses_batch_norm = True  # Q's batch norm must see real and fake apart (GANModel.score_pair)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.body.features(x).flatten(1)  # (B, F)
        if self.fc is not None:
            h = self.fc(h)  # (B, fc)
        return torch.cat([self.body.head(h), self.q(h)], dim=1)
