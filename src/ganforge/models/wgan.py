"""WGAN (Arjovsky et al. 2017): a critic without sigmoid, weight clipping, RMSprop, 5 critic steps."""
import torch

from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN
from ganforge.models.recipe import Rung

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
    # Above digit sizes the paper's critic trains too slowly for CPU minutes (openmoji at 64 px, 10 minutes: FID 295
    # after 357 G steps, repeating patterns): batch 16 as DCGAN's colour rung, RMSprop 10x faster and one critic step
    # per G step, clipping kept. FID 158; at 5 critic steps 225, at 2 182 (benchmarks/bench_recipes.py)
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"batch_size": 16, "optim.G.lr": 5e-4, "optim.D.lr": 5e-4, "n_critic": 1},
                   why="openmoji at 64 px, 10 minutes: FID 158 against 295 at the defaults (benchmarks/bench_recipes.py)"))
    # Algorithm 1 (m = 64) on the DCGAN networks of the authors' code (ngf = ndf = 64), with no EMA
    paper_settings = {"width": 64, "ema.beta": 0.0}

    def after_step(self, phase):
        if phase == "D":
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.cfg.clip, self.cfg.clip)
