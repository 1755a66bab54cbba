"""What a new GAN family looks like: copy this file to models/YOURGAN.py, rename the class, fill it in.

A family is this one file plus one registry line. To make the copy a family:
1. decorate the class with `@register` (from ganforge.models.registry), which puts it in `ganforge models`;
2. add `from ganforge.models import YOURGAN` to models/__init__.py, so that it is imported.
Nothing else changes anywhere: the one trainer runs its phases (with EMA, checkpoints, resume, logging, DDP),
`ganforge sample` and `eval` draw from it, and `serve` and `explore` offer what it declares in `capabilities`.
This file itself is imported by nothing and decorated with nothing, so it is no family of `ganforge models`.
tests/test_model_contract.py trains, checkpoints, loads and serves a family written this way.
"""
from __future__ import annotations

from typing import Dict

import torch

from ganforge import losses
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.models.base import Capability, GANModel, check_psi
from ganforge.nn.mlp import MLPDiscriminator, MLPGenerator  # networks live in nn/, one building block each

ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}  # cite the section that gives them


class TemplateGAN(GANModel):
    name = "template"  # `ganforge train template`
    paper = "Author et al. YEAR, Title of the paper"  # `ganforge models` shows it
    summary = "one line: what G and D are, and the loss"
    # The data it trains on: IMAGES, LABELS (a class per image: G and D take it), PAIRED, UNPAIRED or ATTRIBUTES.
    needs = Kind.IMAGES
    # What front ends may offer beyond training and sampling (models/base.py, Capability): JUDGE comes with the
    # base class's judge, which reads a plain D; each other one needs the methods it names, defined below.
    capabilities = GANModel.capabilities | {Capability.TRUNCATION}
    # Every hyperparameter, defaulting to the paper's value where that works, each with its source in one comment;
    # the trainer's settings (config.TRAINER_DEFAULTS) are overridden here too.
    defaults = {
        "z_dim": 100,
        "hidden_g": [256, 512],
        "hidden_d": [512, 256],
        "loss": "nonsaturating",  # one of losses.ADVERSARIAL_LOSSES
        "batch_size": 64,
        "optim": {"G": ADAM, "D": ADAM},
    }
    # The paper's values where `defaults` differ, by dotted key ("optim.G.lr": 1e-4); the README's table shows them.
    paper_settings: Dict = {}

    @classmethod
    def check_config(cls, cfg) -> None:
        """One line for a setting that cannot work; it runs before any data is read."""
        super().check_config(cfg)
        if cfg.z_dim < 1:
            raise UserError(f"z_dim must be at least 1, got {cfg.z_dim}")

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)  # self.channels, self.size and self.n_classes come from the data
        shape = (self.channels, self.size, self.size)
        # A checkpoint holds the modules `checkpointed` names (G and D here), and the EMA averages `ema_nets` (G).
        self.G = MLPGenerator(cfg.z_dim, shape, cfg.hidden_g)
        self.D = MLPDiscriminator(shape, cfg.hidden_d)

    # The trainer runs `phases()` every iteration: D's step (n_critic times), then G's. Each step returns its
    # losses; the trainer backpropagates the "loss" entry and logs the rest.
    def d_step(self, batch, ctx):
        real = batch["image"]  # (B, C, H, W) in [-1, 1]
        fake, _ = self.make_fake(real.shape[0], real.device, ctx)  # the last D step keeps its graph for G's
        d_real, d_fake = self.score_pair(real, fake)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}

    # `sample` (the base class's) draws `latent` and runs G; a family that samples otherwise overrides it.

    @torch.no_grad()
    def truncate(self, z, psi, labels=None, nets=None):
        """TRUNCATION: latents pulled towards the prior's centre by psi in (0, 1], psi * z: the truncation trick
        (Karras et al. 2019, section 3.2) in Z rather than W."""
        G = (nets or {}).get("G", self.G)  # `nets` holds the EMA copies when sampling
        return G(check_psi(psi) * z, labels)
