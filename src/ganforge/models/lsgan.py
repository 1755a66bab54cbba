"""LSGAN (Mao et al. 2017): least-squares losses on the DCGAN networks."""
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN, PAPER_ADAM


@register
class LSGAN(DCGAN):
    name = "lsgan"
    paper = "Mao et al. 2017, Least Squares Generative Adversarial Networks"
    summary = "DCGAN networks with the least-squares loss (a=0, b=c=1)"
    # DCGAN's networks and recipe, with batch norm in D and DCGAN's Adam 2e-4 (0.5, 0.999)
    defaults = {**DCGAN.defaults, "loss": "lsgan", "d_norm": "batch", "batch_size": 64, "optim": {"G": PAPER_ADAM, "D": PAPER_ADAM}}
    # section 4.1 and the authors' train_lsun.py: Adam 1e-3 (0.5, 0.999), batch 64, z of 1024, D from 64 filters
    recipe = ()  # DCGAN's rungs were measured on dcgan alone: this family keeps its defaults at every size
    paper_settings = {"width": 64, "z_dim": 1024, "optim.G.lr": 1e-3, "optim.D.lr": 1e-3, "ema.beta": 0.0}
