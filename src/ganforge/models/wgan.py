"""WGAN (Arjovsky et al. 2017): a critic without sigmoid, weight clipping, RMSprop, 5 critic steps."""
import torch

from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN

RMSPROP = {"name": "rmsprop", "lr": 5e-5}  # Algorithm 1: alpha = 0.00005


@register
class WGAN(DCGAN):
    name = "wgan"
    paper = "Arjovsky et al. 2017, Wasserstein GAN"
    summary = "Wasserstein critic, weight clipping c = 0.01, RMSprop 5e-5, n_critic 5"
    defaults = {
        **DCGAN.defaults,
        "loss": "wasserstein",
        "n_critic": 5,
        "clip": 0.01,
        "d_norm": "batch",  # the paper's experiments used the DCGAN critic, batch norm included
        "batch_size": 64,
        "optim": {"G": RMSPROP, "D": RMSPROP},
    }
    recipe = ()  # DCGAN's rungs were measured on dcgan alone: this family keeps its defaults at every size
    # Algorithm 1 (m = 64) on the DCGAN networks of the authors' code (ngf = ndf = 64), with no EMA
    paper_settings = {"width": 64, "ema.beta": 0.0}

    def after_step(self, phase):
        if phase == "D":
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.cfg.clip, self.cfg.clip)
