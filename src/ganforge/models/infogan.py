"""InfoGAN (Chen et al. 2016): G's latent carries named codes, and a head Q on D's body reads them back.

G's input is one vector [noise (z_dim), one-hot categorical code (n_cat), continuous codes (n_cont)], so every
front end that draws, interpolates or projects latents handles the codes with no change; `latent(n)` draws all
three. The information term L_I (section 5) is the negative log-likelihood of the codes under Q: cross-entropy
for the categorical code, a factored Gaussian (mean and log-variance per code) for the continuous ones.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ganforge import losses
from ganforge.errors import UserError
from ganforge.models.base import Capability, GANModel
from ganforge.models.dcgan import PAPER_ADAM, check_conv_settings
from ganforge.models.registry import register
from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.nn.infogan import InfoGANDiscriminator, InfoGANGenerator

Tensor = torch.Tensor

CATEGORICAL = "cat"  # the categorical code's name in `--code cat=3`; the continuous ones are c1, c2, ...
# how far a continuous code may be set: the prior is U(-1, 1), and figure 2 sweeps -2 to 2 to show it extrapolates
CODE_REACH = 2.0


def parse_codes(text: str) -> Dict[str, float]:
    """'cat=3,c1=0.5' -> {"cat": 3.0, "c1": 0.5}; the names and ranges are the model's to check (with_codes)."""
    codes: Dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            codes[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--code takes NAME=VALUE pairs separated by commas, e.g. cat=3,c1=0.5; got '{text}'") from None
    return codes


@register
class InfoGAN(GANModel):
    name = "infogan"
    paper = "Chen et al. 2016, InfoGAN: Interpretable Representation Learning by Information Maximizing GANs"
    summary = "DCGAN nets; G takes noise, a categorical code and continuous codes; a Q head on D's body reads the codes back"
    capabilities = GANModel.capabilities | {Capability.CODES}
    # The paper's MNIST latent, Q and optimiser (appendix C.1) and its section 5 weights; a measured recipe for the
    # noise's scale, and DCGAN's small CPU networks
    defaults = {
        "z_dim": 62,  # noise; G's input is 62 + 10 + 2 = 74 wide, as the paper's MNIST G
        # the noise drawn from N(0, 0.1^2) beside the codes (ClusterGAN, Mukherjee et al. 2019): the paper's unit
        # noise carried the digit itself, leaving the categorical code a detail (benchmarks/infogan_codes.py)
        "noise_std": 0.1,
        "n_cat": 10,  # c1 ~ Cat(K=10, p=0.1)
        "n_cont": 2,  # c2, c3 ~ U(-1, 1)
        "lambda_cat": 1.0,  # section 5: "for discrete latent codes lambda = 1 is sufficient"
        # section 5: continuous codes take "a smaller lambda", L_I then holding a differential entropy, without a
        # value for MNIST (the authors' code uses 1 with Q's variance fixed at 1); 1, 0.02 and 0.01 matched the digits
        # no better beyond the seeds' spread in short runs (benchmarks/infogan_codes.py)
        "lambda_cont": 0.1,
        "q_hidden": 128,  # appendix C.1: Q's own fully connected layer of 128 units on D's body; 0 puts Q in D's last layer
        # table 1: G's and D's fully connected layer of 1024 units beside the convolutions; none here, as with it
        # runs took several times as long and matched the digits within the seeds' spread (benchmarks/infogan_codes.py)
        "fc": 0,
        "width": 32,  # 64-32 channels at 28 px, DCGAN's CPU width (the paper's convolutions are 64-128)
        "d_norm": "batch",  # appendix C.1: batch norm in D; with the optimiser below it matched the digits better than DCGAN's recipe
        "batch_size": 64,  # DCGAN's CPU recipe; the authors' code takes 128
        "loss": "nonsaturating",  # the paper's GAN objective, with G's non-saturating form
        # appendix C.1: Adam 2e-4 for D and 1e-3 for G, beta1 0.5 as the authors' code; DCGAN's faster CPU recipe
        # (spectral norm, Adam (0, 0.99), G 2e-3, D 4e-3) matched the digits worse
        "optim": {"G": {**PAPER_ADAM, "lr": 1e-3}, "D": {**PAPER_ADAM, "lr": 2e-4}},
        "ema": {"beta": 0.999},  # EMA of G (Yazici et al. 2019), as DCGAN's recipe
    }
    # appendix C.1 (MNIST): unit Gaussian noise, convolutions 64-128 and FC 1024 in G and D, no average of G; the
    # batch of 128 is the authors' code's
    paper_settings = {"width": 64, "fc": 1024, "batch_size": 128, "ema.beta": 0.0, "noise_std": 1.0}

    legacy_settings = {"q_hidden": 0, "noise_std": 1.0, "fc": 0}  # runs saved before Q had a layer of its own, the noise a scale and G and D an fc layer

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        check_conv_settings(cfg)
        if cfg.q_hidden < 0 or cfg.noise_std <= 0:
            raise UserError(f"infogan: q_hidden must be at least 0 and noise_std above 0, got q_hidden={cfg.q_hidden}, noise_std={cfg.noise_std}")
        if cfg.fc < 0 or (cfg.fc and not cfg.q_hidden):
            raise UserError(f"infogan: fc must be at least 0, and above 0 only with Q's own layer (q_hidden above 0); got fc={cfg.fc}, q_hidden={cfg.q_hidden}")
        if cfg.n_cat < 2 or cfg.n_cont < 0:
            raise UserError(f"infogan: n_cat must be at least 2 and n_cont at least 0, got n_cat={cfg.n_cat}, n_cont={cfg.n_cont}")
        if cfg.lambda_cat < 0 or cfg.lambda_cont < 0:
            raise UserError(f"infogan: lambda_cat and lambda_cont must be at least 0, got {cfg.lambda_cat} and {cfg.lambda_cont}")

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.n_noise, self.n_cat, self.n_cont = cfg.z_dim, cfg.n_cat, cfg.n_cont
        self.code_names = (CATEGORICAL, *(f"c{i + 1}" for i in range(self.n_cont)))
        if cfg.fc:
            self.G = InfoGANGenerator(self.z_dim, self.channels, self.size, cfg.width, cfg.fc)
        else:
            self.G = DCGANGenerator(self.z_dim, self.channels, self.size, cfg.width)
        # D's output: [real/fake, n_cat logits, n_cont means, n_cont log-variances]; Q shares D's convolutions
        # (section 5) and has a layer of its own (appendix C.1), or with q_hidden=0 adds its outputs to D's last layer
        n_q = self.n_cat + 2 * self.n_cont
        if cfg.q_hidden:
            self.D = InfoGANDiscriminator(self.channels, self.size, cfg.width, cfg.d_norm, n_q, cfg.q_hidden, cfg.fc)
        else:
            self.D = DCGANDiscriminator(self.channels, self.size, cfg.width, cfg.d_norm, aux_classes=n_q)

    # --- the latent: [noise, one-hot categorical, continuous] -------------------------------------------
    @property
    def z_dim(self) -> int:
        """The width of G's whole input, codes included: what latents, projection and explore work in."""
        return self.cfg.z_dim + self.cfg.n_cat + self.cfg.n_cont

    def latent(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        noise = torch.randn(n, self.n_noise, generator=generator, device=device) * self.cfg.noise_std  # N(0, noise_std^2)
        cat = torch.randint(0, self.n_cat, (n,), generator=generator, device=device)
        cont = torch.rand(n, self.n_cont, generator=generator, device=device) * 2 - 1  # U(-1, 1)
        return torch.cat([noise, F.one_hot(cat, self.n_cat).to(noise.dtype), cont], dim=1)

    def split_latent(self, z: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Latents (N, z_dim) -> (noise (N, n_noise), one-hot categorical (N, n_cat), continuous (N, n_cont))."""
        return z.split([self.n_noise, self.n_cat, self.n_cont], dim=1)

    def latent_start(self, space, device=None):
        """The prior's centre: zero noise and continuous codes, and the categorical code's mean 1/n_cat."""
        z = torch.zeros(1, self.z_dim, device=device)
        z[:, self.n_noise : self.n_noise + self.n_cat] = 1.0 / self.n_cat
        return self.to_space(z, space)

    def with_codes(self, z: Tensor, codes: Dict[str, float]) -> Tensor:
        """CODES: a copy of latents z (N, z_dim) with the named codes set: cat to an index, c1... to a value."""
        for name, value in codes.items():
            if name not in self.code_names:
                raise UserError(f"infogan has no code '{name}'; its codes: {', '.join(self.code_names)}")
            if name == CATEGORICAL and (value != int(value) or not 0 <= value < self.n_cat):
                raise UserError(f"code cat takes a whole number from 0 to {self.n_cat - 1}, got {value:g}")
            if name != CATEGORICAL and not -CODE_REACH <= value <= CODE_REACH:
                raise UserError(f"code {name} takes a value from -{CODE_REACH:g} to {CODE_REACH:g} (its prior is -1 to 1), got {value:g}")
        z = z.clone()
        for name, value in codes.items():
            if name == CATEGORICAL:
                z[:, self.n_noise : self.n_noise + self.n_cat] = 0.0
                z[:, self.n_noise + int(value)] = 1.0
            else:
                z[:, self.n_noise + self.n_cat + int(name[1:]) - 1] = value
        return z

    @torch.no_grad()
    def sample(self, n, labels=None, generator=None, nets=None, truncation=None, codes: Optional[Dict[str, float]] = None):
        """The base sample, with `codes` ({name: value}, CODES) fixed in every latent and the rest drawn."""
        if truncation is not None:
            return super().sample(n, labels, generator, nets, truncation)  # the base refuses it
        G = (nets or {}).get("G", self.G)
        z = self.latent(n, generator, next(G.parameters()).device)
        return G(self.with_codes(z, codes) if codes else z)

    # --- training ---------------------------------------------------------------------------------
    def fake_batch(self, n, device):
        """G's images of n fresh latents, and the codes they were drawn with (N, n_cat + n_cont) as their labels."""
        z = self.latent(n, device=device)
        return self.G(z), z[:, self.n_noise :]

    def random_labels(self, n, device):
        return None  # unsupervised: the codes are drawn with the latent

    def split_q(self, out: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """D's output (N, 1 + n_cat + 2 n_cont) -> (real/fake score (N,), code logits (N, n_cat), continuous
        means (N, n_cont), their log-variances (N, n_cont))."""
        return out[:, 0], *out[:, 1:].split([self.n_cat, self.n_cont, self.n_cont], dim=1)

    def information(self, out: Tensor, codes: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """L_I's weighted parts on fakes: (total, categorical cross-entropy, continuous Gaussian NLL), each a mean
        over the batch; the code entropy H(c) of the bound (equation 5) is constant and left out."""
        _, logits, mean, log_var = self.split_q(out)
        cat = F.cross_entropy(logits, codes[:, : self.n_cat].argmax(dim=1))
        cont = codes[:, self.n_cat :]
        nll = 0.5 * (math.log(2 * math.pi) + log_var + (cont - mean) ** 2 * torch.exp(-log_var))
        cont_nll = nll.sum(dim=1).mean() if self.n_cont else cat.new_zeros(())
        return self.cfg.lambda_cat * cat + self.cfg.lambda_cont * cont_nll, cat, cont_nll

    # Q's parameters are D's (one body, one head), so D's optimiser steps them in the D phase, on its detached
    # fakes; in the G phase D and Q are frozen and the same term moves G alone: both minimise L_I (equation 6).
    def d_step(self, batch, ctx):
        real = batch["image"]
        fake, codes = self.make_fake(real.shape[0], real.device, ctx)
        out_real, out_fake = self.score_pair(real, fake)
        adversarial = losses.d_loss(self.cfg.loss, out_real[:, 0], out_fake[:, 0])
        info, cat, cont = self.information(out_fake, codes)
        return {"loss": adversarial + info, "adv": adversarial.detach(), "info": info.detach(), "cat": cat.detach(),
                "cont": cont.detach()}

    def g_step(self, batch, ctx):
        fake, codes = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        out = self.score(fake)
        adversarial = losses.g_loss(self.cfg.loss, out[:, 0])
        info, cat, cont = self.information(out, codes)
        return {"loss": adversarial + info, "info": info.detach(), "cat": cat.detach(), "cont": cont.detach()}

    def adversarial_scores(self, out):
        return out[:, 0]

    # --- reading images ---------------------------------------------------------------------------
    @torch.no_grad()
    def read_codes(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Q on images (N, C, H, W) in [-1, 1]: (categorical probabilities (N, n_cat), continuous means (N, n_cont))."""
        _, logits, mean, _ = self.split_q(self.D(images, None))
        return torch.softmax(logits, dim=1), mean

    @torch.no_grad()
    def judge(self, images, labels=None):
        """Real or fake from D's own column; Q's outputs are the codes', not a verdict."""
        return self.verdict(self.D(images, None)[:, 0])
