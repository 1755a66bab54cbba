"""Latents of a trained generator and the .npz files that carry them between `project`, `edit`, `explore` and
the web page.

A latent file holds:
    space     "z", "w" or "w+": which of the model's `latent_spaces` the values live in
    latents   float32 (N, D) for z and w, (N, num_ws, w_dim) for w+
    labels    int64 (N,), for class-conditional families only
    model     the family's name, checked on load so that a file meets only a generator it fits
    and any figures beside them (projection writes psnr and ssim, (N,) each).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.models.base import Capability

Tensor = torch.Tensor


@dataclass
class Latents:
    space: str  # "z", "w" or "w+"
    values: Tensor  # (N, D) or (N, num_ws, w_dim) for w+
    labels: Optional[Tensor] = None  # (N,) the class of each, for class-conditional families
    figures: Dict[str, np.ndarray] = field(default_factory=dict)  # per-latent figures: psnr, ssim, ...

    def __len__(self) -> int:
        return self.values.shape[0]


def check_space(model, space: str, name: str = "") -> str:
    """`space` if the model generates from it, else one line naming the ones it has."""
    family = name or model.name
    if not model.can(Capability.LATENT):
        raise UserError(f"{family} translates images and has no latent space to project into or edit in")
    if space not in model.latent_spaces:
        raise UserError(f"{family} has no '{space}' space; its latent spaces: {', '.join(model.latent_spaces)}")
    return space


def render(model, latents: Latents) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] of latents, with gradients (the caller adds no_grad where it needs none)."""
    labels = None if latents.labels is None else latents.labels.to(latents.values.device)
    return model.generate(latents.values, latents.space, labels)


def save_latents(path: Union[str, Path], latents: Latents, model_name: str) -> Path:
    """Write a latent file (the format above); the folder is made if missing."""
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"a latent file ends in .npz, got '{path}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"space": np.array(latents.space), "latents": latents.values.detach().cpu().float().numpy(),
              "model": np.array(model_name)}
    if latents.labels is not None:
        arrays["labels"] = latents.labels.detach().cpu().long().numpy()
    arrays.update({k: np.asarray(v) for k, v in latents.figures.items()})
    np.savez(path, **arrays)
    return path


def load_latents(path: Union[str, Path], model, model_name: str = "") -> Latents:
    """A latent file checked against the model it is for: the family, the space and the shape."""
    path = Path(path)
    family = model_name or model.name
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise UserError(f"no latent file '{path}'") from None
    except (OSError, ValueError) as e:
        raise UserError(f"'{path}' is not a latent file (.npz): {e}") from None
    missing = [k for k in ("space", "latents", "model") if k not in arrays]
    if missing:
        raise UserError(f"'{path}' is not a ganforge latent file: it lacks '{missing[0]}' (write one with `ganforge project`)")
    if str(arrays["model"]) != family:
        raise UserError(f"'{path}' holds latents of a {arrays['model']} model, not of this {family}")
    space = check_space(model, str(arrays["space"]), family)
    values = torch.from_numpy(arrays["latents"].astype(np.float32))
    expected = tuple(model.latent_start(space).shape[1:])
    if values.ndim < 2 or tuple(values.shape[1:]) != expected:
        raise UserError(f"'{path}': latents of shape {tuple(values.shape)} do not fit this {family}'s {space} space "
                        f"(N, {', '.join(map(str, expected))})")
    labels = torch.from_numpy(arrays["labels"].astype(np.int64)) if "labels" in arrays else None
    if model.conditional and labels is None:
        raise UserError(f"'{path}' has no labels, which this class-conditional {family} needs")
    figures = {k: v for k, v in arrays.items() if k not in ("space", "latents", "model", "labels")}
    return Latents(space, values, labels, figures)
