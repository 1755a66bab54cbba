"""pix2pix (Isola et al. 2017): a conditional GAN that learns a paired image-to-image mapping.

G is a U-Net; D is a PatchGAN that judges (input, output) pairs patch by patch; G minimises the GAN loss
plus lambda * L1 to the target (eq. 4), the L1 term carrying the low frequencies and D the sharp detail.
This file also holds what the image-to-image families share (`ImageToImageModel`).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ganforge import losses
from ganforge.errors import UserError
from ganforge.imaging.transforms import match_channels
from ganforge.models.registry import register
from ganforge.data.catalogue import Kind
from ganforge.models.base import Capability, GANModel, Translated
from ganforge.nn.patchgan import PatchDiscriminator, patch_layers
from ganforge.nn.unet import UNetGenerator

Tensor = torch.Tensor
PAPER_ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}  # pix2pix section 3.3 and CycleGAN section 4


class ImageToImageModel(GANModel):
    """What the image-to-image families share: two domains, translation instead of sampling from noise,
    sample grids of inputs next to outputs, quality figures on held-out pairs."""

    translates = True
    capabilities = frozenset()  # each family declares its own D's verdict
    directions: Tuple[str, ...] = ("a2b",)  # what `ganforge translate --direction` may ask of this family
    unused_settings = ("augment", "alpha")  # their discriminators see un-augmented pairs, as in the papers

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)
        self.channels_b = info.get("channels_b", self.channels)
        self.size_b = info.get("size_b", self.size)

    def sample(self, n, labels=None, generator=None, nets=None):
        raise UserError(f"{self.name} translates images rather than sampling from noise: use `ganforge translate RUN INPUT...`")

    def judge(self, images, labels=None):
        raise self._unsupported("discriminator to ask about a lone image")

    def net(self, name: str, nets: Optional[Dict[str, nn.Module]]) -> nn.Module:
        """A network by name, or its EMA copy when `nets` holds one."""
        return (nets or {}).get(name, getattr(self, name))

    def input_channels(self, direction: str = "a2b") -> int:
        """Channels of the images a direction takes in (an extra mask channel for inpainting not counted)."""
        return self.channels if direction == "a2b" else self.channels_b

    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise UserError(f"{self.name} translates {' and '.join(self.directions)} only, not {direction}")

    @staticmethod
    def shown(images: Tensor) -> Tensor:
        """Images for a grid: colour, so grey and colour domains sit side by side."""
        return match_channels(images[:, :3], 3) if images.shape[1] in (1, 3) else match_channels(images[:, :1], 3)

    @staticmethod
    def scores(D: nn.Module, real: Tensor, fake: Tensor) -> Tuple[Tensor, Tensor]:
        """D on real and fake: one batched call, except with batch norm, whose statistics must not mix them."""
        if getattr(D, "uses_batch_norm", False):
            return D(real), D(fake)
        out = D(torch.cat([real, fake]))
        return out[: real.shape[0]], out[real.shape[0]:]

    def style_term(self, fake: Tensor, real: Tensor) -> Tensor:
        """Gram-matrix style loss between outputs and real images of their domain (Gatys et al. 2016), on the
        feature maps of the network that describes that domain (the digit classifier for grey digits, else
        Inception's first blocks: features/maps.py); weighted by `style_weight`."""
        from ganforge.imaging.gram import style_loss
        from ganforge.features.maps import feature_maps, feature_network_for

        network = feature_network_for(self.info, real.shape[1])
        return style_loss(feature_maps(fake, network), feature_maps(real, network))


@register
class Pix2Pix(ImageToImageModel):
    name = "pix2pix"
    paper = "Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks"
    summary = "U-Net G with dropout, PatchGAN D on (input, output), GAN + 100 * L1; paired data"
    needs = Kind.PAIRED
    capabilities = frozenset({Capability.JUDGE})
    defaults = {
        "data": "mnist5k-edges",
        "width": 0,  # 0 = by size: ngf = ndf = 64 from 128 px (appendix 6.1); 32 below, for CPU runs on small images
        "d_layers": 0,  # PatchGAN stride-2 layers; 0 = by image size (70 x 70 patches at 256 px, section 4.4)
        "dropout": 0.5,  # in the three innermost decoder layers (appendix 6.1.1)
        "lambda_l1": 100.0,  # eq. 4, section 4
        "style_weight": 0.0,  # optional Gram-matrix style loss on the outputs
        "direction": "a2b",  # which side of the pairs is the input (b2a: facades labels -> photos)
        "loss": "nonsaturating",  # the conditional GAN loss with G maximising log D (section 3.3)
        "batch_size": 16,  # keeps a CPU busy
        "optim": {"G": PAPER_ADAM, "D": PAPER_ADAM},
        "eval": {"n": 1000},
    }
    # appendix 6.1 (ngf = ndf = 64) and section 3.3 (batch sizes 1 to 10)
    paper_settings = {"width": 64, "batch_size": "1 to 10"}

    adversarial_losses = losses.CRITERION_LOSSES

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        if cfg.direction not in ("a2b", "b2a"):
            raise UserError(f"direction must be a2b or b2a, got '{cfg.direction}'")

    def __init__(self, cfg, info: Dict):
        super().__init__(cfg, info)
        self.check_pairs(info)
        if self.size_b != self.size:
            raise UserError(f"{self.name} needs both sides of a pair at one size; '{info['name']}' has {self.size} and {self.size_b} px")
        self.reverse = cfg.direction == "b2a"
        c_in, c_out = self.source_target_channels()
        layers = cfg.d_layers or patch_layers(self.size)
        width = cfg.width or (64 if self.size >= 128 else 32)
        self.G = UNetGenerator(c_in, c_out, self.size, width, cfg.dropout)
        self.D = PatchDiscriminator(c_in + c_out, width, layers, norm="batch")

    def check_pairs(self, info: Dict) -> None:
        if not info.get("paired"):
            raise UserError(f"{self.name} learns from aligned pairs, and '{info['name']}' is unpaired: use cyclegan, or give "
                            "aligned A|B images or A/ and B/ folders with matching file names")

    def source_target_channels(self) -> Tuple[int, int]:
        return (self.channels_b, self.channels) if self.reverse else (self.channels, self.channels_b)

    def input_channels(self, direction: str = "a2b") -> int:
        return self.source_target_channels()[0]

    def source_target(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """(input x, target y) of a batch: A and B, or B and A with direction b2a."""
        a, b = batch["image"], batch["image_b"]
        return (b, a) if self.reverse else (a, b)

    def generate(self, x: Tensor, nets=None) -> Tensor:
        return self.net("G", nets)(x)

    # --- training ---------------------------------------------------------------------------------
    def d_step(self, batch, ctx):
        x, y = self.source_target(batch)
        fake = self.generate(x)  # kept with its graph: the G step reuses it
        ctx.cache["fake"] = (x, y, fake)
        d_real, d_fake = self.scores(self.D, torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1))
        return {"loss": losses.halved_d_criterion(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        if "fake" in ctx.cache:
            x, y, fake = ctx.cache.pop("fake")
        else:
            x, y = self.source_target(batch)
            fake = self.generate(x)
        adversarial = losses.criterion(self.cfg.loss, self.D(torch.cat([x, fake], 1)), real=True)
        l1 = losses.l1(fake, y)
        loss = adversarial + self.cfg.lambda_l1 * l1
        out = {"adv": adversarial.detach(), "l1": l1.detach()}
        if self.cfg.style_weight:
            style = self.style_term(fake, y)
            loss = loss + self.cfg.style_weight * style
            out["style"] = style.detach()
        return {"loss": loss, **out}

    # --- using it ---------------------------------------------------------------------------------
    def translate(self, x: Tensor, direction: str = "a2b", nets=None) -> Tensor:
        self.check_direction(direction)
        return self.generate(x, nets)

    @torch.no_grad()
    def judge(self, images, labels=None, source=None):
        """D judges (input, output) pairs, so it needs the inputs `source` (N, C_in, H, W) that the images
        answer; the PatchGAN's map averaged per image."""
        if source is None:
            raise UserError(f"{self.name}'s D judges (input, output) pairs: give the inputs as source")
        return self.verdict(self.D(torch.cat([source, images], dim=1)))

    def preview(self, batch, nets=None):
        x, y = self.source_target(batch)
        out = self.generate(x, nets)
        rows = torch.stack([self.shown(x), self.shown(out), self.shown(y)], dim=1)  # (n, 3, 3, H, W)
        return rows.flatten(0, 1), 3 * 4  # input | output | target, four triplets a row

    def translations(self, test, nets=None) -> Dict[str, Translated]:
        """The held-out inputs' outputs against their targets: the digit they should show, or, on other data, how
        far they are from the targets in Inception space beside how far the inputs are."""
        x, y = self.source_target(_as_batch(test, self.G))
        out = _batched(lambda part: self.generate(part, nets), x)
        judged = ("cfd", "acc") if test.labels is not None else ("fid",)
        return {"": Translated(out, ("psnr", "l1", *judged), targets=y, labels=test.labels, inputs=x)}


def _as_batch(data, like: nn.Module) -> Dict[str, Tensor]:
    """An ImageData as one float batch on the device of the network `like`."""
    from ganforge.data.base import to_float

    device = next(like.parameters()).device
    batch = {"image": to_float(data.images.to(device))}
    if data.images_b is not None:
        batch["image_b"] = to_float(data.images_b.to(device))
    return batch


def _batched(function, x: Tensor, chunk: int = 250) -> Tensor:
    """function over x in chunks (bounded memory on large held-out sets)."""
    return torch.cat([function(part) for part in x.split(chunk)])
