"""CycleGAN (Zhu et al. 2017): unpaired translation between domains X and Y with cycle consistency.

G: X -> Y and F: Y -> X are ResNet generators; D_X and D_Y are PatchGANs. The generators minimise the
least-squares adversarial loss plus lambda * (||F(G(x)) - x||_1 + ||G(F(y)) - y||_1) (eq. 3, lambda = 10),
plus the identity loss 0.5 * lambda * (||G(y) - y||_1 + ||F(x) - x||_1) (section 5.2), which keeps colours
where nothing needs to change. It needs G to take Y images, so it is skipped when X and Y differ in channels.

Each iteration runs the generator phase first on a fresh batch (x from X = A, y from Y = B, drawn in
independent orders), then the discriminator phase on the same batch: D_X and D_Y see the new fakes through
50-image history buffers (section 4), so no generator runs twice.
"""
from __future__ import annotations

from typing import Dict

import torch

from ganforge import losses
from ganforge.errors import UserError
from ganforge.models.registry import register
from ganforge.data.catalogue import Kind
from ganforge.models.base import Capability, Phase, Translated
from ganforge.models.pix2pix import PAPER_ADAM, ImageToImageModel, _as_batch, _batched
from ganforge.nn.patchgan import PatchDiscriminator, patch_layers
from ganforge.nn.resnet import ResnetGenerator, resnet_blocks
from ganforge.nn.image_pool import ImagePool

Tensor = torch.Tensor


@register
class CycleGAN(ImageToImageModel):
    name = "cyclegan"
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
    summary = "G: X->Y, F: Y->X (ResNet), PatchGANs D_X, D_Y, LSGAN + 10 * cycle + 5 * identity, 50-image pools; unpaired"
    needs = Kind.UNPAIRED
    capabilities = frozenset({Capability.JUDGE})
    directions = ("a2b", "b2a")
    ema_nets = ("G", "F")
    checkpointed = ("G", "F", "D_X", "D_Y", "pool_X", "pool_Y")
    # one D step per G step, its fakes from the history buffers; D sees un-augmented images
    unused_settings = ("n_critic", "augment", "alpha")
    adversarial_losses = losses.CRITERION_LOSSES
    defaults = {
        "data": "mnist5k-colored",
        # 0 = by size: ngf = ndf = 64 from 128 px (appendix 7.2), 32 from 64 px, 16 below: small images train in minutes
        "width": 0,
        "n_blocks": 0,  # residual blocks; 0 = by size: 6 below 256 px, 9 from 256 px (appendix 7.2)
        "d_layers": 0,  # PatchGAN stride-2 layers; 0 = by size (70 x 70 patches at 256 px)
        "lambda_cyc": 10.0,  # lambda, eq. 3 (section 4)
        "lambda_id": 0.5,  # identity weight as a fraction of lambda_cyc: 0.5 * lambda (section 5.2)
        "style_weight": 0.0,  # optional Gram-matrix style loss of G(x) against real Y images
        # optional low-frequency content term: L1 between each input and its translation, both box-filtered and
        # shrunk by low_factor, so that the layout is kept while the GAN rewrites the finer detail (the frequency
        # separation of Fritsche et al. 2019); 0 = off, as in the paper
        "lambda_low": 0.0,
        "low_factor": 4,
        "pool_size": 50,  # the history buffer (section 4)
        "loss": "lsgan",  # least-squares GAN loss (section 4)
        "batch_size": 4,  # keeps a CPU busier for the same result per image
        "steps": 4000,  # mnist5k-colored: 2,000 constant + 2,000 decaying
        "optim": {"G": PAPER_ADAM, "D": PAPER_ADAM},  # Adam 2e-4, beta1 0.5 (section 4)
        # constant learning rate for the first half, then linear decay to zero (100 + 100 epochs, section 4)
        "schedule": {"kind": "linear_decay", "decay_start": 0.5},
        "eval": {"n": 1000},
    }
    # section 4 (batch 1, 100 + 100 epochs) and appendix 7.2 (ngf = ndf = 64)
    paper_settings = {"width": 64, "batch_size": 1, "steps": "200 epochs"}

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if cfg.pool_size < 0:
            raise UserError(f"pool_size must be >= 0, got {cfg.pool_size}")
        if cfg.lambda_low < 0 or cfg.low_factor < 1:
            raise UserError(f"lambda_low must be >= 0 and low_factor at least 1, got {cfg.lambda_low} and {cfg.low_factor}")

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)
        if self.size_b != self.size:
            raise UserError(f"cyclegan needs both domains at one size; '{info['name']}' has {self.size} and {self.size_b} px")
        blocks = cfg.n_blocks or resnet_blocks(self.size)
        layers = cfg.d_layers or patch_layers(self.size)
        width = cfg.width or (64 if self.size >= 128 else 32 if self.size >= 64 else 16)
        cx, cy = self.channels, self.channels_b
        self.G = ResnetGenerator(cx, cy, width, blocks)  # X -> Y
        self.F = ResnetGenerator(cy, cx, width, blocks)  # Y -> X
        self.D_X = PatchDiscriminator(cx, width, layers, norm="instance")
        self.D_Y = PatchDiscriminator(cy, width, layers, norm="instance")
        self.pool_X = ImagePool(cfg.pool_size, (cx, self.size, self.size))
        self.pool_Y = ImagePool(cfg.pool_size, (cy, self.size, self.size))
        self.identity = cfg.lambda_id > 0 and cx == cy
        if cfg.lambda_low > 0 and cx != cy:
            raise UserError(f"lambda_low compares each input with its translation, so both domains need one channel count; "
                            f"'{info['name']}' has {cx} and {cy}")

    def phases(self):
        return [Phase("G", new_batch=True, frozen=("D",)), Phase("D")]

    def parameter_groups(self):
        return {"G": [self.G, self.F], "D": [self.D_X, self.D_Y]}

    def step(self, phase, batch, ctx):
        return self.g_step(batch, ctx) if phase == "G" else self.d_step(batch, ctx)

    def g_step(self, batch, ctx):
        x, y = batch["image"], batch["image_b"]
        fake_y, fake_x = self.G(x), self.F(y)
        adversarial = losses.criterion(self.cfg.loss, self.D_Y(fake_y), True) + losses.criterion(self.cfg.loss, self.D_X(fake_x), True)
        cycle = losses.l1(self.F(fake_y), x) + losses.l1(self.G(fake_x), y)
        loss = adversarial + self.cfg.lambda_cyc * cycle
        out = {"adv": adversarial.detach(), "cycle": cycle.detach()}
        if self.identity:
            identity = losses.l1(self.G(y), y) + losses.l1(self.F(x), x)
            loss = loss + self.cfg.lambda_cyc * self.cfg.lambda_id * identity
            out["identity"] = identity.detach()
        if self.cfg.lambda_low:
            low = losses.l1(self.low(fake_y), self.low(x)) + losses.l1(self.low(fake_x), self.low(y))
            loss = loss + self.cfg.lambda_low * low
            out["low"] = low.detach()
        if self.cfg.style_weight:
            style = self.style_term(fake_y, y) + self.style_term(fake_x, x)
            loss = loss + self.cfg.style_weight * style
            out["style"] = style.detach()
        ctx.cache["fakes"] = (fake_x.detach(), fake_y.detach())  # the D phase's fakes: no generator runs again
        return {"loss": loss, **out}

    def low(self, images: Tensor) -> Tensor:
        """The low frequencies the content term compares: a low_factor x low_factor box filter, decimated."""
        return torch.nn.functional.avg_pool2d(images, self.cfg.low_factor, ceil_mode=True)

    def d_step(self, batch, ctx):
        x, y = batch["image"], batch["image_b"]
        fake_x, fake_y = ctx.cache.pop("fakes")
        real_x, old_x = self.scores(self.D_X, x, self.pool_X.query(fake_x))
        real_y, old_y = self.scores(self.D_Y, y, self.pool_Y.query(fake_y))
        d_x = losses.halved_d_criterion(self.cfg.loss, real_x, old_x)
        d_y = losses.halved_d_criterion(self.cfg.loss, real_y, old_y)
        return {"loss": d_x + d_y, "D_X": d_x.detach(), "D_Y": d_y.detach()}

    # --- using it ---------------------------------------------------------------------------------
    def translate(self, x: Tensor, direction: str = "a2b", nets=None) -> Tensor:
        self.check_direction(direction)
        return self.net("G" if direction == "a2b" else "F", nets)(x)

    @torch.no_grad()
    def judge(self, images, labels=None, side: str = "b"):
        """D_Y on images of Y (side b, what G makes), D_X on images of X (side a); each PatchGAN's map averaged."""
        if side not in ("a", "b"):
            raise UserError(f"side must be a or b, got '{side}'")
        return self.verdict((self.D_Y if side == "b" else self.D_X)(images))

    def preview(self, batch, nets=None):
        G, F = self.net("G", nets), self.net("F", nets)
        x, y = batch["image"], batch["image_b"]
        fake_y, fake_x = G(x), F(y)
        columns = [x, fake_y, F(fake_y), y, fake_x, G(fake_x)]
        rows = torch.stack([self.shown(c) for c in columns], dim=1)  # (n, 6, 3, H, W)
        return rows.flatten(0, 1), 6 * 2  # x | G(x) | F(G(x)) | y | F(y) | G(F(y)), two a row

    def translations(self, test, nets=None) -> Dict[str, Translated]:
        """Both directions on held-out data: the cycle reconstructions against the inputs and, for paired data,
        each direction's outputs against their pairs, with the digit they should keep (a colour digit on its
        textured background read by its luma); for unpaired labelled digits, the digit each output keeps and, A->B,
        how far it lies from MNIST's digits."""
        G, F = self.net("G", nets), self.net("F", nets)
        batch = _as_batch(test, self.G)
        x, y = batch["image"], batch["image_b"]
        fake_y, fake_x = _batched(G, x), _batched(F, y)
        made = {"cycle_x": Translated(_batched(F, fake_y), ("psnr",), targets=x),
                "cycle_y": Translated(_batched(G, fake_x), ("psnr",), targets=y)}
        if test.paired:
            judged = ("cfd", "acc") if test.labels is not None else ("fid",)
            made["a2b"] = Translated(fake_y, ("psnr", *judged), targets=y, labels=test.labels, digit="luma", inputs=x)
            made["b2a"] = Translated(fake_x, ("psnr", *judged), targets=x, labels=test.labels, digit="luma", inputs=y)
        elif test.labels is not None and test.labels_b is not None:
            # unpaired digits of two real styles (mnist5k-optdigits, B = MNIST): each output should keep its input's
            # digit; a2b's cFD (to MNIST's held-out digits) says how far it took MNIST's look, from its inputs' cFD
            made["a2b"] = Translated(fake_y, ("cfd", "acc"), labels=test.labels, inputs=x)
            made["b2a"] = Translated(fake_x, ("acc",), labels=test.labels_b, inputs=y)
        return made
