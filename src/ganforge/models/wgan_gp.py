"""WGAN-GP (Gulrajani et al. 2017): the critic's Lipschitz constraint as a gradient penalty."""
from ganforge import losses
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN
from ganforge.models.recipe import Rung

# the authors' MNIST script: Adam 1e-4 with betas (0.5, 0.9), n_critic 5 (Algorithm 1 has beta1 0)
PAPER_ADAM = {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.9]}


@register
class WGANGP(DCGAN):
    name = "wgan-gp"
    paper = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"
    summary = "Wasserstein critic with gradient penalty lambda 10 and no batch norm; n_critic 5 in the paper"
    # The loss and penalty are the paper's. One critic step per G step with Adam (0, 0.99) as in Karras 2018, at
    # DCGAN's rates (critic faster, TTUR, Heusel 2017): on mnist5k it beat the paper's set-up by far in equal time.
    defaults = {
        **DCGAN.defaults,
        "loss": "wasserstein",
        "n_critic": 1,
        "gp_weight": 10.0,  # lambda
        "d_norm": "none",  # the penalty is per sample, so the critic has no batch norm (section 4)
        "batch_size": 64,
        "optim": {"G": {**PAPER_ADAM, "lr": 2e-3, "betas": [0.0, 0.99]}, "D": {**PAPER_ADAM, "lr": 4e-3, "betas": [0.0, 0.99]}},
    }
    # Above digit sizes the critic at these rates blew up (scores in the thousands, FID 379 on openmoji at 64 px in
    # 10 minutes, 390 at batch 16): batch 16 as DCGAN's colour rung at a quarter of the rates, FID 146; half of
    # them gave 145 and a tenth 173, so a quarter keeps a margin from the rates that blew up at the same FID
    # (benchmarks/bench_recipes.py, the README's recipe figures)
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"batch_size": 16, "optim.G.lr": 5e-4, "optim.D.lr": 1e-3},
                   why="openmoji at 64 px, 10 minutes: FID 146 against 379 at the defaults, whose critic blew up "
                       "(benchmarks/bench_recipes.py)"))
    # the authors' MNIST script (gan_mnist.py): 5 critic steps, Adam 1e-4 (0.5, 0.9), batch 50, DIM 64, z of 128
    paper_settings = {
        "n_critic": 5, "batch_size": 50, "width": 64, "z_dim": 128, "ema.beta": 0.0,
        "optim.G.lr": 1e-4, "optim.D.lr": 1e-4, "optim.G.betas": [0.5, 0.9], "optim.D.betas": [0.5, 0.9],
    }

    def d_step(self, batch, ctx):
        real = batch["image"]
        fake, _ = self.make_fake(real.shape[0], real.device, ctx)
        d_real, d_fake = self.score_pair(real, fake)
        wasserstein = losses.d_loss(self.cfg.loss, d_real, d_fake)
        penalty = losses.gradient_penalty(self.score, real, fake, input_gradient=self.score_gradient)
        return {"loss": wasserstein + self.cfg.gp_weight * penalty, "wasserstein": -wasserstein.detach(), "gp": penalty.detach()}
