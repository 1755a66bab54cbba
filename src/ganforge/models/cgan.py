"""Conditional GAN (Mirza & Osindero 2014): the one-hot label joins z in G and the image in D.

The paper's networks are MLPs (`--set networks=mlp`). On mnist5k they drew far more samples of the wrong digit
than convolutional networks in the same CPU time, so the default networks are DCGAN's with the same
conditioning: the one-hot label joined to z (100-d) in G, and as ten constant label planes joined to the
image's channels in D.
"""
import torch

from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.models.base import Capability
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN, check_conv_settings, conv_networks
from ganforge.models.gan import GAN
from ganforge.models.recipe import Rung


@register
class CGAN(GAN):
    name = "cgan"
    paper = "Mirza & Osindero 2014, Conditional Generative Adversarial Nets"
    summary = "GAN with the class label joined to z (100-d) in G and to the image in D"
    needs = Kind.LABELS
    capabilities = GAN.capabilities | {Capability.JUDGE_AS_CLASS}
    # the conv networks take DCGAN's small-data recipe; `networks=mlp` gives the paper's MLPs
    defaults = {
        **GAN.defaults,
        "networks": "conv",  # conv | mlp (the paper's)
        "batch_size": DCGAN.defaults["batch_size"],
        "width": DCGAN.defaults["width"],
        "d_norm": DCGAN.defaults["d_norm"],
        "optim": DCGAN.defaults["optim"],
        "ema": DCGAN.defaults["ema"],
    }
    # the conv networks take DCGAN's colour rung too: more, smaller steps in the same minutes
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"batch_size": 16},
                   why="DCGAN's colour rung; mnist5k-attrs' colour digits at 64 px, 10 minutes: "
                       "FID 121 against 150 at batch 64 (benchmarks/bench_recipes.py)"))
    # section 4.1 (MNIST): MLPs, SGD 0.1 with momentum 0.5, batch 100, dropout 0.5
    paper_settings = {
        "networks": "mlp", "batch_size": 100, "ema.beta": 0.0, "dropout": 0.5,
        "optim.G.name": "sgd", "optim.G.lr": 0.1, "optim.G.momentum": 0.5,
        "optim.D.name": "sgd", "optim.D.lr": 0.1, "optim.D.momentum": 0.5,
        "hidden_g": "z 200 and label 1000, joined 1200", "hidden_d": "maxout: image 240 and label 50, joined 240",
    }

    # the settings that only one kind of network reads
    network_settings = {"mlp": ("hidden_g", "hidden_d", "dropout"), "conv": ("width", "d_norm")}

    @classmethod
    def check_network_settings(cls, cfg):
        if cfg.networks not in cls.network_settings:
            raise UserError(f"networks must be conv or mlp, got '{cfg.networks}'")
        for kind, keys in cls.network_settings.items():
            changed = [k for k in keys if kind != cfg.networks and cfg[k] != cls.defaults[k]]
            if changed:
                raise UserError(f"cgan: {', '.join(changed)} {'is' if len(changed) == 1 else 'are'} read with networks={kind} only, and this run has networks={cfg.networks}")
        if cfg.networks == "mlp":
            super().check_network_settings(cfg)
        else:
            check_conv_settings(cfg)

    def networks(self, cfg):
        if cfg.networks == "mlp":
            return super().networks(cfg)
        return conv_networks(cfg, self.channels, self.size, g_classes=self.n_classes, d_classes=self.n_classes)

    @torch.no_grad()
    def judge(self, images, labels=None):
        """D takes the class, so each image is judged as every class ("a real 3?"); the score is that of
        `labels`, or of the class D finds most real."""
        n, k = images.shape[0], self.n_classes
        classes = torch.arange(k, device=images.device).repeat(n)
        as_class = self.D(images.repeat_interleave(k, dim=0), classes).reshape(n, k)
        if labels is None:
            return self.verdict(as_class.amax(dim=1), as_class=as_class)
        return self.verdict(as_class.gather(1, labels.to(images.device).view(n, 1)), as_class=as_class)
