"""LSGAN (Mao et al. 2017): least-squares losses on the DCGAN networks."""
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN, PAPER_ADAM


@register
class LSGAN(DCGAN):
    name = "lsgan"
    paper = "Mao et al. 2017, Least Squares Generative Adversarial Networks"
    summary = "DCGAN networks with the least-squares loss (a=0, b=c=1)"
    # DCGAN's networks and recipe; batch norm in D and Adam 2e-4, beta1 0.5 as in the paper's experiments
    defaults = {**DCGAN.defaults, "loss": "lsgan", "d_norm": "batch", "batch_size": 64, "optim": {"G": PAPER_ADAM, "D": PAPER_ADAM}}
