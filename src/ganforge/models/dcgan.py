"""DCGAN (Radford et al. 2015) with a small-data recipe that trains on 4,000 digits in minutes on a CPU."""
from ganforge import losses
from ganforge.errors import UserError
from ganforge.models.registry import register
from ganforge.models.base import GANModel
from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator

PAPER_ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}  # section 4


def check_conv_settings(cfg) -> None:
    if cfg.d_norm not in ("batch", "spectral", "none"):
        raise UserError(f"d_norm must be batch, spectral or none, got '{cfg.d_norm}'")
    if cfg.width < 1 or cfg.z_dim < 1:
        raise UserError(f"width and z_dim must be at least 1, got width={cfg.width}, z_dim={cfg.z_dim}")


def conv_networks(cfg, channels: int, size: int, g_classes: int = 0, d_classes: int = 0, aux_classes: int = 0):
    """(G, D): DCGAN's networks for a config's width, d_norm and z_dim; g_classes and d_classes join one-hot
    labels to G's z and D's input, aux_classes gives D a class head."""
    return (DCGANGenerator(cfg.z_dim, channels, size, cfg.width, n_classes=g_classes),
            DCGANDiscriminator(channels, size, cfg.width, cfg.d_norm, n_classes=d_classes, aux_classes=aux_classes))


@register
class DCGAN(GANModel):
    name = "dcgan"
    paper = "Radford et al. 2015, Unsupervised Representation Learning with DCGANs"
    summary = "transposed-conv G with BN/ReLU/tanh, strided-conv D with LeakyReLU 0.2"
    # G and the loss are the paper's. The rest is a small-data CPU recipe, chosen by cFD against held-out digits
    # after 2,700 steps (3 CPU-minutes) on mnist5k; `--set width=64 batch_size=128 d_norm=batch
    # optim.G.lr=2e-4 optim.D.lr=2e-4 optim.G.betas=[0.5,0.999] optim.D.betas=[0.5,0.999] ema.beta=0`
    # gives the paper's set-up back.
    defaults = {
        "z_dim": 100,
        "width": 32,  # 64-32 channels at 28 px: at equal wall-clock it beat width 48 and 64
        # Spectral norm in D (Miyato 2018) instead of the paper's batch norm: cFD 28.7 vs 32.7 at 2,700 steps
        # (no norm: 29.2), at the same cost per step
        "d_norm": "spectral",
        "batch_size": 64,  # paper 128; at equal images seen, 32 and 64 ended level
        "loss": "nonsaturating",  # hinge (Lim 2017) was level without a norm, worse with spectral norm
        # Adam at 10x (G) and 20x (D) the paper's rate, beta1 0 and beta2 0.99 (as in Karras 2019) and D
        # faster than G (TTUR, Heusel 2017): cFD 27.4 at 2,700 steps vs 38.5 for the paper's betas at 2e-3
        "optim": {"G": {**PAPER_ADAM, "lr": 2e-3, "betas": [0.0, 0.99]}, "D": {**PAPER_ADAM, "lr": 4e-3, "betas": [0.0, 0.99]}},
        "ema": {"beta": 0.999},  # EMA of G (Yazici et al. 2019), with the warm-up in training/ema.py
    }
    aux_classes = 0  # ACGAN's D adds a class head

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        check_conv_settings(cfg)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        conditional = self.n_classes if self.needs == "labels" else 0
        self.G, self.D = conv_networks(cfg, self.channels, self.size, g_classes=conditional, aux_classes=self.aux_classes)

    def random_labels(self, n, device):
        return super().random_labels(n, device) if self.needs == "labels" else None

    def d_step(self, batch, ctx):
        fake, _ = self.make_fake(batch["image"].shape[0], batch["image"].device, ctx)
        d_real, d_fake = self.score_pair(batch["image"], fake)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}
