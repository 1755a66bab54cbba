"""DCGAN (Radford et al. 2015) with a small-data recipe that trains on 4,000 digits in minutes on a CPU."""
from ganforge import losses
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.models.registry import register
from ganforge.models.base import GANModel
from ganforge.models.recipe import Rung
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
    # G and the loss are the paper's; the rest is a small-data CPU recipe, chosen by cFD on mnist5k
    defaults = {
        "z_dim": 100,
        "width": 32,  # 64-32 channels at 28 px: wider networks did worse in the same CPU time
        "d_norm": "spectral",  # spectral norm (Miyato 2018) beat the paper's batch norm at the same cost per step
        "batch_size": 64,  # smaller batches did as well per image seen
        "loss": "nonsaturating",  # hinge (Lim 2017) was level without a norm, worse with spectral norm
        # Adam (0, 0.99) as in Karras 2019, D faster than G (TTUR, Heusel 2017), 10x and 20x the paper's rate
        "optim": {"G": {**PAPER_ADAM, "lr": 2e-3, "betas": [0.0, 0.99]}, "D": {**PAPER_ADAM, "lr": 4e-3, "betas": [0.0, 0.99]}},
        "ema": {"beta": 0.999},  # EMA of G (Yazici et al. 2019), with the warm-up in training/ema.py
    }
    # section 4 (batch 128, Adam 2e-4 with beta1 0.5, batch norm) and the authors' code (ngf = ndf = 64)
    paper_settings = {
        "width": 64, "batch_size": 128, "d_norm": "batch", "ema.beta": 0.0,
        "optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "optim.G.betas": [0.5, 0.999], "optim.D.betas": [0.5, 0.999],
    }
    # Above digit sizes the same CPU minutes buy more, smaller steps: on openmoji at 64 px, 10 minutes on one thread,
    # FID 136 at batch 16 against 146 at 32 and 185 at 64; ADA and lower or wider settings did worse there
    # (`python benchmarks/bench_recipes.py`, the README's recipe figures)
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"batch_size": 16}, why="openmoji at 64 px, 10 minutes: FID 136 against 185 at batch 64 "
                                                "(benchmarks/bench_recipes.py)"))
    aux_classes = 0  # ACGAN's D adds a class head

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        check_conv_settings(cfg)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        conditional = self.n_classes if self.needs == Kind.LABELS else 0
        self.G, self.D = conv_networks(cfg, self.channels, self.size, g_classes=conditional, aux_classes=self.aux_classes)

    def random_labels(self, n, device):
        return super().random_labels(n, device) if self.needs == Kind.LABELS else None

    def d_step(self, batch, ctx):
        fake, _ = self.make_fake(batch["image"].shape[0], batch["image"].device, ctx)
        d_real, d_fake = self.score_pair(batch["image"], fake)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}
