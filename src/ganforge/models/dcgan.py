"""DCGAN (Radford et al. 2015) with a small-data recipe that trains on 4,000 digits in minutes on a CPU."""
from ganforge import losses
from ganforge.errors import UserError
from ganforge.models import register
from ganforge.models.base import GANModel
from ganforge.nn.dcgan import DCGANDiscriminator, DCGANGenerator

PAPER_ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}  # section 4


@register
class DCGAN(GANModel):
    name = "dcgan"
    paper = "Radford et al. 2015, Unsupervised Representation Learning with DCGANs"
    summary = "transposed-conv G with BN/ReLU/tanh, strided-conv D with LeakyReLU 0.2"
    # The networks and loss are the paper's. The rest is a small-data CPU recipe, chosen by cFD at equal
    # wall-clock on mnist5k; `--set width=64 batch_size=128 optim.G.lr=2e-4 optim.D.lr=2e-4 ema.beta=0`
    # gives the paper's set-up back.
    defaults = {
        "z_dim": 100,
        "width": 32,  # 64-32 channels at 28 px: at equal wall-clock it beat width 48 and 64
        "d_norm": "batch",  # the paper's; faster per second here than spectral norm (Miyato 2018)
        "batch_size": 64,  # paper 128; at equal images seen, 32 and 64 ended level
        "loss": "nonsaturating",
        # Adam with the paper's beta1 = 0.5 at 5x its learning rate: cFD 56 vs 96 after 1,000 steps
        "optim": {"G": {**PAPER_ADAM, "lr": 1e-3}, "D": {**PAPER_ADAM, "lr": 1e-3}},
        "ema": {"beta": 0.999},  # EMA of G (Yazici et al. 2019), with the warm-up in training/ema.py
    }
    aux_classes = 0  # ACGAN's D adds a class head

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        if cfg.d_norm not in ("batch", "spectral", "none"):
            raise UserError(f"d_norm must be batch, spectral or none, got '{cfg.d_norm}'")
        conditional = self.n_classes if self.needs == "labels" else 0
        self.G = DCGANGenerator(cfg.z_dim, self.channels, self.size, cfg.width, n_classes=conditional)
        self.D = DCGANDiscriminator(self.channels, self.size, cfg.width, cfg.d_norm, n_classes=0, aux_classes=self.aux_classes)

    def random_labels(self, n, device):
        return super().random_labels(n, device) if self.needs == "labels" else None

    def d_step(self, batch, ctx):
        fake, _ = self.make_fake(batch["image"].shape[0], batch["image"].device, ctx)
        d_real, d_fake = self.score_pair(batch["image"], fake)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, _ = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake))}
