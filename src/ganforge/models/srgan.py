"""SRGAN (Ledig et al. 2017): super-resolution x2 / x4 with a residual generator and an adversarial term.

The perceptual loss is a content loss plus 1e-3 times the adversarial loss (eq. 3). Content is the pixel MSE
(the paper's SRResNet-MSE; on images in [-1, 1], section 3.2) plus, optionally, the MSE between feature maps
of the output and the target (the paper's VGG loss). No VGG weights ship with ganforge, so the maps come from
a fixed network that describes the data (features/maps.py): the built-in digit classifier for grey
digits, the first blocks of the standard metrics' Inception network for anything else (colour, photos).
The paper starts SRGAN from an MSE-trained SRResNet: `warmup` steps of content loss alone do the same within
one run.

Data: pairs of low- and high-resolution images (mnist5k-sr4: 7 -> 28 px), or single images, which are
downsampled on the fly (bicubic with antialiasing, as the paper makes its inputs) by `scale`.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from ganforge import losses
from ganforge.errors import UserError
from ganforge.data.catalogue import Kind
from ganforge.features.maps import feature_maps, feature_network_for
from ganforge.models.base import Capability, Translated
from ganforge.models.registry import register
from ganforge.models.pix2pix import ImageToImageModel, _as_batch, _batched
from ganforge.nn.srresnet import SRDiscriminator, SRResNet, sr_steps

Tensor = torch.Tensor

def bicubic(images: Tensor, scale: int) -> Tensor:
    """The baseline every SR method is compared with: bicubic upsampling, clamped to [-1, 1]."""
    return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def downsample(images: Tensor, scale: int) -> Tensor:
    """High-resolution (B, C, H, W) -> low-resolution inputs (B, C, H / scale, W / scale): bicubic, antialiased."""
    h, w = images.shape[-2:]
    return F.interpolate(images, size=(h // scale, w // scale), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


@register
class SRGAN(ImageToImageModel):
    name = "srgan"
    paper = "Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution Using a GAN"
    summary = "x2/x4 super-resolution: SRResNet G with pixel shuffle, content (pixel [+ feature]) + 1e-3 adversarial loss"
    needs = Kind.IMAGES  # LR/HR pairs, or single images made into pairs on the fly
    capabilities = frozenset({Capability.JUDGE})
    defaults = {
        "data": "mnist5k-sr4",
        "scale": 4,  # x4 (section 3); pairs set it from their sizes
        "width": 64,  # 64 channels in G, 64 -> 512 in D (figure 4)
        "n_blocks": 16,  # B = 16 residual blocks (section 3.2)
        "adv_weight": 1e-3,  # eq. 3
        "feature_weight": 0.0,  # optional feature-space content loss (the paper's VGG loss, section 2.2.1)
        "style_weight": 0.0,  # optional Gram-matrix style loss (Gatys et al. 2016) on the same maps
        "warmup": 0,  # steps of content loss alone before the adversarial term (SRResNet initialisation)
        "loss": "nonsaturating",  # -log D(G(I_LR)), eq. 6
        "batch_size": 16,  # section 3.2
        "optim": {"G": {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999]},  # section 3.2: Adam, beta1 0.9, 1e-4
                  "D": {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999]}},
        "eval": {"n": 1000},
    }
    # section 3.2: G starts from an SRResNet trained 10^6 steps, then 10^5 steps at 1e-4 and 10^5 at 1e-5
    paper_settings = {"warmup": "10^6 steps, as a separate SRResNet", "steps": "10^5 at lr 1e-4, then 10^5 at 1e-5"}

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)
        self.paired = bool(info.get("two_domains"))
        if self.paired:
            self.scale, rest = divmod(self.size_b, self.size)
            if rest or self.scale not in (2, 4):
                raise UserError(f"srgan pairs must be 2x or 4x apart; '{info['name']}' has {self.size} and {self.size_b} px images")
        else:
            self.scale = cfg.scale
            sr_steps(self.scale)
            if self.size % self.scale:
                raise UserError(f"srgan at x{self.scale} needs an image size divisible by {self.scale}, got {self.size}: set size")
            self.channels_b, self.size_b = self.channels, self.size
        self.feature_network = feature_network_for(info, self.channels_b)  # what the feature and style losses compare in
        self.G = SRResNet(self.channels, self.channels_b, self.scale, cfg.width, cfg.n_blocks)
        self.D = SRDiscriminator(self.channels_b, self.size_b, cfg.width)

    def low_high(self, batch: Dict[str, Tensor]):
        """(low-resolution input, high-resolution target) of a batch."""
        if self.paired:
            return batch["image"], batch["image_b"]
        return downsample(batch["image"], self.scale), batch["image"]

    def d_step(self, batch, ctx):
        low, high = self.low_high(batch)
        fake = self.G(low)
        ctx.cache["fake"] = fake
        d_real, d_fake = self.scores(self.D, high, fake.detach())
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        low, high = self.low_high(batch)
        fake = ctx.cache.pop("fake") if "fake" in ctx.cache else self.G(low)
        pixel = (fake - high).square().mean()
        loss, out = pixel, {"mse": pixel.detach()}
        if self.cfg.feature_weight or self.cfg.style_weight:
            fake_maps = feature_maps(fake, self.feature_network)
            real_maps = [m.detach() for m in feature_maps(high, self.feature_network)]
            if self.cfg.feature_weight:
                feature = sum((a - b).square().mean() for a, b in zip(fake_maps, real_maps))
                loss, out["feature"] = loss + self.cfg.feature_weight * feature, feature.detach()
            if self.cfg.style_weight:
                from ganforge.imaging.gram import style_loss

                style = style_loss(fake_maps, real_maps)
                loss, out["style"] = loss + self.cfg.style_weight * style, style.detach()
        if ctx.step >= self.cfg.warmup:
            adversarial = losses.g_loss(self.cfg.loss, self.D(fake))
            loss, out["adv"] = loss + self.cfg.adv_weight * adversarial, adversarial.detach()
        return {"loss": loss, **out}

    def translate(self, x: Tensor, direction: str = "a2b", nets=None) -> Tensor:
        self.check_direction(direction)
        return self.net("G", nets)(x)

    @torch.no_grad()
    def judge(self, images, labels=None):
        """D on high-resolution images (N, C, size_b, size_b)."""
        return self.verdict(self.D(images))

    def preview(self, batch, nets=None):
        low, high = self.low_high(batch)
        out = self.net("G", nets)(low)
        nearest = F.interpolate(low, scale_factor=self.scale, mode="nearest")
        rows = torch.stack([self.shown(nearest), self.shown(bicubic(low, self.scale)), self.shown(out), self.shown(high)], dim=1)
        return rows.flatten(0, 1), 4 * 3  # input (pixels enlarged) | bicubic | output | target, three a row

    def translations(self, test, nets=None) -> Dict[str, Translated]:
        """The held-out low-resolution inputs upsampled by G and, as the baseline, bicubically."""
        low, high = self.low_high(_as_batch(test, self.G))
        out = _batched(self.net("G", nets), low)
        return {"": Translated(out, ("psnr", "cfd", "acc"), targets=high, labels=test.labels),
                "bicubic": Translated(bicubic(low, self.scale), ("psnr", "cfd"), targets=high, labels=test.labels)}
