"""The registry of GAN families: `ganforge train NAME` looks a model up here; each family registers itself."""
from __future__ import annotations

import difflib
from typing import Dict, Type

from ganforge.errors import UserError
from ganforge.models.base import GANModel

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
