"""StyleGAN (Karras et al. 2019) with StyleGAN2's generator and discriminator (Karras et al. 2020).

Training: the non-saturating loss, style mixing regularisation on 90% of the fakes, lazy R1 on real data
every `r1_every` discriminator steps, Adam (0, 0.99) and an EMA of G. Sampling: the EMA generator with its
fixed noise, optionally truncated towards the tracked average w; styles of the three levels can be mixed.
The networks live in ganforge/nn/stylegan.py (no progressive growing; see there).

The defaults are a small-data CPU recipe: narrow networks, two mapping layers, a 4x learning rate and a
tanh image (the README's quality table gives what they reach on mnist5k).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ganforge import losses
from ganforge.errors import UserError
from ganforge.models.registry import register
from ganforge.models.base import Capability, GANModel, check_psi
from ganforge.models.recipe import Rung
from ganforge.nn.stylegan import LEVELS, StyleDiscriminator, StyleGenerator, crossover_mask, mix_styles

Tensor = torch.Tensor

# StyleGAN2's Adam betas (0, 0.99) at a higher rate: these networks are far narrower than the paper's, and at
# StyleGAN2-ADA's 0.0025 they stayed far from the data for thousands of steps
ADAM = {"name": "adam", "lr": 0.01, "betas": [0.0, 0.99]}


@register
class StyleGAN(GANModel):
    name = "stylegan"
    paper = "Karras et al. 2019, A Style-Based Generator Architecture for GANs (+ StyleGAN2, Karras et al. 2020)"
    summary = "mapping network to W, modulated convolutions, noise inputs, style mixing, truncation, R1, EMA"
    capabilities = GANModel.capabilities | {Capability.TRUNCATION, Capability.STYLE_MIXING}
    style_space = "w+"  # one w per style slot: what `styles` gives and `synthesize` takes
    latent_spaces = ("w+", "w", "z")  # W+ reconstructs best (Abdal et al. 2019); W stays among the generator's images
    defaults = {
        "z_dim": 128,
        "w_dim": 128,
        "mapping_layers": 2,  # the paper's 8 trained far slower here; StyleGAN2-ADA uses 2 for CIFAR-10 (appendix)
        "mapping_lr_mul": 0.01,  # StyleGAN section 2 / appendix C
        "width": 16,  # channels at half the network's size, doubling per halving: 16 at 16 px, 32 at 8, 64 at 4
        "max_width": 128,
        "mixing_prob": 0.9,  # StyleGAN section 3.1
        "w_avg_beta": 0.995,  # the tracked average w for truncation (StyleGAN2 code)
        "r1_gamma": 1.0,  # gamma 0.1 did worse on mnist5k
        "r1_every": 16,  # lazy regularisation (StyleGAN2 section 3.1)
        # fir: a binomial low-pass after each of G's upsampling convolutions (StyleGAN2 appendix B); none: without.
        # Digits are too small to show its checkerboard and came out worse with it: the recipe turns it on above 32 px
        "resample": "none",
        "loss": "nonsaturating",
        "batch_size": 32,  # StyleGAN2's
        "optim": {"G": ADAM, "D": ADAM},
        "ema": {"beta": 0.998},  # half-life of ~10k images at batch 32 (StyleGAN2's ema_kimg = 10)
    }
    # StyleGAN section 2 (512-d z and w, 8 mapping layers) and StyleGAN2 config F (fmap_base 16384, at most 512
    # channels, Adam 0.002, R1 gamma 10 for FFHQ)
    paper_settings = {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "width": "16384 / layer resolution",
                      "max_width": 512, "r1_gamma": 10.0, "optim.G.lr": 2e-3, "optim.D.lr": 2e-3, "resample": "fir"}
    legacy_settings = {"resample": "none"}  # runs saved before the filter
    # Above digit sizes: StyleGAN2's filter (without it G's samples carry a period-2 checkerboard,
    # tests/test_resample.py); batch 16 for more steps in the same minutes; and ADA (Karras et al. 2020), since D
    # memorises a colour set of a few thousand images (its loss near 0.3 and G's near 4 by step 4,000), and ADA's p
    # rises only as far as D overfits. On openmoji at 64 px, 10 minutes: FID 127.7 at the defaults, 121.3
    # at batch 16, 109.7 with ADA too (benchmarks/bench_recipes.py)
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"resample": "fir", "batch_size": 16, "augment.policy": "ada"},
                   why="openmoji at 64 px, 10 minutes: FID 110 against 128 (benchmarks/bench_recipes.py); the filter "
                       "removes a period-2 checkerboard (tests/test_resample.py)"))

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        for key, ok, rule in [("z_dim", cfg.z_dim >= 1, "at least 1"), ("w_dim", cfg.w_dim >= 1, "at least 1"),
                              ("mapping_layers", cfg.mapping_layers >= 1, "at least 1"),
                              ("mapping_lr_mul", cfg.mapping_lr_mul > 0, "greater than 0"),
                              ("width", cfg.width >= 1, "at least 1"), ("max_width", cfg.max_width >= 1, "at least 1"),
                              ("mixing_prob", 0 <= cfg.mixing_prob <= 1, "in [0, 1]"),
                              ("w_avg_beta", 0 <= cfg.w_avg_beta < 1, "in [0, 1)"),
                              ("r1_gamma", cfg.r1_gamma >= 0, "0 or more"), ("r1_every", cfg.r1_every >= 1, "at least 1")]:
            if not ok:
                raise UserError(f"{key} must be {rule}, got {cfg[key]}")
        if cfg.resample not in ("fir", "none"):
            raise UserError(f"resample must be fir or none, got '{cfg.resample}'")

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.G = StyleGenerator(cfg.z_dim, cfg.w_dim, self.channels, self.size, cfg.width, cfg.max_width,
                                cfg.mapping_layers, cfg.mapping_lr_mul, cfg.w_avg_beta, fir=cfg.resample == "fir")
        self.D = StyleDiscriminator(self.channels, self.size, cfg.width, cfg.max_width)

    # --- training --------------------------------------------------------------------------------
    def fake_batch(self, n: int, device) -> Tuple[Tensor, None]:
        """A fake batch with style mixing: two latents per image, crossing over at a random layer."""
        z = torch.randn(2 * n, self.z_dim, device=device)
        w = self.G.mapping(z)
        ws_a, ws_b = self.G.broadcast(w[:n]), self.G.broadcast(w[n:])
        mask = crossover_mask(n, self.G.num_ws, self.cfg.mixing_prob, device)
        return self.G.crop(self.G.synthesis(mix_styles(ws_a, ws_b, mask))), None

    def d_step(self, batch, ctx):
        real = batch["image"]
        fake, _ = self.make_fake(real.shape[0], real.device, ctx)
        # real and fake scored apart: the minibatch-stddev layer must not mix them within a group
        lazy_r1 = self.cfg.r1_gamma > 0 and ctx.step % self.cfg.r1_every == 0
        if lazy_r1:
            real = real.detach().requires_grad_(True)
        d_real, d_fake = self.score(real, real=True), self.score(fake)
        out = {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}
        if lazy_r1:
            # gamma / 2 * E||grad D(x)||^2, weighted by the interval so that its average strength is unchanged
            r1 = losses.r1_penalty(d_real, real)
            out["loss"] = out["loss"] + self.cfg.r1_gamma / 2 * self.cfg.r1_every * r1
            out["r1"] = r1.detach()
        return out

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}

    # --- sampling and exploring ------------------------------------------------------------------
    def _generator(self, nets: Optional[Dict[str, nn.Module]]) -> StyleGenerator:
        return (nets or {}).get("G", self.G)

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               nets: Optional[Dict[str, nn.Module]] = None, truncation: Optional[float] = None) -> Tensor:
        G = self._generator(nets)
        z = self.latent(n, generator, next(G.parameters()).device)
        return self.truncate(z, 1.0 if truncation is None else truncation, nets=nets)

    @torch.no_grad()
    def truncate(self, z: Tensor, psi: float, labels: Optional[Tensor] = None, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] from z with w pulled towards the average w: w_avg + psi (w - w_avg)."""
        return self._generator(nets)(z, psi=check_psi(psi))

    @torch.no_grad()
    def styles(self, z: Tensor, psi: float = 1.0, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """z (N, z_dim) -> ws (N, num_ws, w_dim), truncated by psi."""
        G = self._generator(nets)
        return G.broadcast(G.mapping.truncate(G.mapping(z), check_psi(psi)))

    @torch.no_grad()
    def synthesize(self, ws: Tensor, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """ws (N, num_ws, w_dim) -> images (N, C, H, W) in [-1, 1]."""
        G = self._generator(nets)
        return G.crop(G.synthesis(ws))

    def generate(self, latent: Tensor, space: str = "w+", labels: Optional[Tensor] = None,
                 nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """latent z (N, z_dim), w (N, w_dim) or w+ (N, num_ws, w_dim) -> images, with gradients."""
        G = self._generator(nets)
        if space == "z":
            return G(latent)
        if space == "w":
            latent = G.broadcast(latent)
        elif space != "w+":
            raise UserError(f"stylegan's latent spaces are w+, w and z, not '{space}'")
        return G.crop(G.synthesis(latent))

    def to_space(self, z: Tensor, space: str, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        if space == "z":
            return z
        G = self._generator(nets)
        w = G.mapping(z)
        if space == "w":
            return w
        if space == "w+":
            return G.broadcast(w).clone()
        raise UserError(f"stylegan's latent spaces are w+, w and z, not '{space}'")

    def latent_start(self, space: str, device=None) -> Tensor:
        """The tracked average w (as the StyleGAN2 projector starts), broadcast for w+; z = 0 in z."""
        G = self.G
        if space == "z":
            return torch.zeros(1, self.z_dim, device=device)
        w = G.mapping.w_avg.detach()[None].to(device)
        return G.broadcast(w).clone() if space == "w+" else w.clone()

    def style_slots(self) -> Dict[str, List[int]]:
        return {level: self.G.synthesis.level_mask([level]).nonzero().flatten().tolist() for level in LEVELS}

    @torch.no_grad()
    def mix(self, z_a: Tensor, z_b: Tensor, levels: Sequence[str], labels: Optional[Tensor] = None,
            psi: float = 1.0, nets: Optional[Dict[str, nn.Module]] = None) -> Tensor:
        """Images of z_a whose styles at `levels` (coarse, middle, fine) come from z_b (StyleGAN figure 3)."""
        G = self._generator(nets)
        mask = G.synthesis.level_mask(list(levels))
        return self.synthesize(mix_styles(self.styles(z_a, psi, nets), self.styles(z_b, psi, nets), mask), nets)
