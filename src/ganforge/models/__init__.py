"""The GAN families. A new family is one file in this folder defining a `GANModel` subclass decorated with
`@register` (from models.registry), plus one import line below."""
from ganforge.models.base import GANModel, Phase, StepContext
from ganforge.models.registry import MODELS, get_model, register

# The families: one line each.
from ganforge.models import gan, cgan, dcgan, lsgan, wgan, wgan_gp, acgan  # noqa: E402,F401
from ganforge.models import pix2pix, cyclegan, srgan, inpaint  # noqa: E402,F401
from ganforge.models import stylegan  # noqa: E402,F401
from ganforge.models import stargan  # noqa: E402,F401
from ganforge.models import infogan  # noqa: E402,F401

__all__ = ["GANModel", "Phase", "StepContext", "MODELS", "register", "get_model"]
