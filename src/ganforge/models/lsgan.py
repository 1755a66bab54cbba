"""LSGAN (Mao et al. 2017): least-squares losses on the DCGAN networks."""
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN, PAPER_ADAM
from ganforge.models.recipe import Rung


@register
class LSGAN(DCGAN):
    name = "lsgan"
    paper = "Mao et al. 2017, Least Squares Generative Adversarial Networks"
    summary = "DCGAN networks with the least-squares loss (a=0, b=c=1)"
    # DCGAN's networks and recipe, with batch norm in D and DCGAN's Adam 2e-4 (0.5, 0.999)
    defaults = {**DCGAN.defaults, "loss": "lsgan", "d_norm": "batch", "batch_size": 64, "optim": {"G": PAPER_ADAM, "D": PAPER_ADAM}}
    # section 4.1 and the authors' train_lsun.py: Adam 1e-3 (0.5, 0.999), batch 64, z of 1024, D from 64 filters
    # Above digit sizes the batch-norm D with the paper's Adam collapsed (openmoji at 64 px, 10 minutes: FID 421):
    # DCGAN's colour recipe instead, the least-squares loss kept (benchmarks/bench_recipes.py)
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"d_norm": "spectral", "batch_size": 16, "optim.G.lr": 2e-3, "optim.D.lr": 4e-3,
                         "optim.G.betas": [0.0, 0.99], "optim.D.betas": [0.0, 0.99]},
                   why="DCGAN's colour recipe: the defaults' FID 421 on openmoji at 64 px, 10 minutes (benchmarks/bench_recipes.py)"))
    paper_settings = {"width": 64, "z_dim": 1024, "optim.G.lr": 1e-3, "optim.D.lr": 1e-3, "ema.beta": 0.0}
