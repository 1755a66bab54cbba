"""The original GAN (Goodfellow et al. 2014): MLP generator and discriminator, k D steps per G step."""
from ganforge import losses
from ganforge.data.catalogue import Kind
from ganforge.errors import UserError
from ganforge.models.registry import register
from ganforge.models.base import GANModel
from ganforge.nn.mlp import MLPDiscriminator, MLPGenerator

ADAM = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}


@register
class GAN(GANModel):
    name = "gan"
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    summary = "MLP G and D; minimax or non-saturating loss; n_critic = k"
    defaults = {
        "loss": "nonsaturating",  # section 3: maximise log D(G(z)) early in training
        "n_critic": 1,  # k = 1, the paper's experiments
        "batch_size": 100,  # the paper's MNIST set-up
        "z_dim": 100,
        "hidden_g": [256, 512, 1024],
        "hidden_d": [512, 256],
        "dropout": 0.0,
        "optim": {"G": ADAM, "D": ADAM},  # Adam (Radford 2015) trains these MLPs in far fewer steps than SGD
    }
    # Algorithm 1, section 5 and the authors' mnist.yaml: SGD 0.1 with momentum 0.5, G 1200-1200, maxout D with dropout
    paper_settings = {
        "optim.G.name": "sgd", "optim.G.lr": 0.1, "optim.G.momentum": 0.5,
        "optim.D.name": "sgd", "optim.D.lr": 0.1, "optim.D.momentum": 0.5,
        "hidden_g": [1200, 1200], "hidden_d": "maxout [240, 240]", "dropout": 0.5,
    }

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.G, self.D = self.networks(cfg)

    @classmethod
    def check_config(cls, cfg):
        super().check_config(cfg)
        cls.check_network_settings(cfg)

    @classmethod
    def check_network_settings(cls, cfg) -> None:
        if cfg.z_dim < 1:
            raise UserError(f"z_dim must be at least 1, got {cfg.z_dim}")
        for key in ("hidden_g", "hidden_d"):
            if not cfg[key] or min(cfg[key]) < 1:
                raise UserError(f"{key} must list one or more layer widths of at least 1, got {cfg[key]}")
        if not 0 <= cfg.dropout < 1:
            raise UserError(f"dropout must be in [0, 1), got {cfg.dropout}")

    def networks(self, cfg):
        """(G, D): the MLPs, with the one-hot label joined to their inputs when the family is conditional."""
        shape = (self.channels, self.size, self.size)
        conditional = self.n_classes if self.needs == Kind.LABELS else 0
        return (MLPGenerator(cfg.z_dim, shape, cfg.hidden_g, n_classes=conditional),
                MLPDiscriminator(shape, cfg.hidden_d, n_classes=conditional, dropout=cfg.dropout))

    def random_labels(self, n, device):
        return super().random_labels(n, device) if self.needs == Kind.LABELS else None

    def d_step(self, batch, ctx):
        real, real_labels = batch["image"], batch.get("label") if self.needs == Kind.LABELS else None
        fake, fake_labels = self.make_fake(real.shape[0], real.device, ctx)
        d_real, d_fake = self.score_pair(real, fake, real_labels, fake_labels)
        return {"loss": losses.d_loss(self.cfg.loss, d_real, d_fake)}

    def g_step(self, batch, ctx):
        fake, labels = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        return {"loss": losses.g_loss(self.cfg.loss, self.score(fake, labels))}
