"""WGAN-GP (Gulrajani et al. 2017): the critic's Lipschitz constraint as a gradient penalty."""
from ganforge import losses
from ganforge.models import register
from ganforge.models.dcgan import DCGAN

# Algorithm 1 and the authors' MNIST script: Adam 1e-4 with betas (0.5, 0.9)
ADAM = {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.9]}


@register
class WGANGP(DCGAN):
    name = "wgan-gp"
    paper = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
    summary = "Wasserstein critic with gradient penalty lambda 10, n_critic 5, no batch norm in the critic"
    defaults = {
        **DCGAN.defaults,
        "loss": "wasserstein",
        "n_critic": 5,
        "gp_weight": 10.0,  # lambda
        "d_norm": "none",  # the penalty is per sample, so the critic has no batch norm (section 4)
        "batch_size": 64,
        "optim": {"G": ADAM, "D": ADAM},
    }

    def d_step(self, batch, ctx):
        real = batch["image"]
        fake, _ = self.make_fake(real.shape[0], real.device, ctx)
        d_real, d_fake = self.score_pair(real, fake)
        wasserstein = losses.d_loss(self.cfg.loss, d_real, d_fake)
        penalty = losses.gradient_penalty(self.score, real, fake)
        return {"loss": wasserstein + self.cfg.gp_weight * penalty, "wasserstein": -wasserstein.detach(), "gp": penalty.detach()}
