"""The registry of GAN families: `ganforge train NAME` looks a model up here.

A new family is one file in this folder defining a `GANModel` subclass, plus one line below.
"""
from __future__ import annotations

import difflib
from typing import Dict, Type

from ganforge.errors import UserError
from ganforge.models.base import GANModel, Phase, StepContext

MODELS: Dict[str, Type[GANModel]] = {}


def register(cls: Type[GANModel]) -> Type[GANModel]:
    MODELS[cls.name] = cls
    return cls


def get_model(name: str) -> Type[GANModel]:
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown model '{name}'{hint}; available: {', '.join(MODELS)}")
    return MODELS[name]


# The registry: one line per family.
from ganforge.models import gan, cgan, dcgan, lsgan, wgan, wgan_gp, acgan  # noqa: E402,F401
from ganforge.models import pix2pix, cyclegan, srgan, inpaint  # noqa: E402,F401
from ganforge.models import stylegan  # noqa: E402,F401
from ganforge.models import stargan  # noqa: E402,F401

__all__ = ["GANModel", "Phase", "StepContext", "MODELS", "register", "get_model"]
