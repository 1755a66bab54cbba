"""Settings that follow the image: a family's table of rungs by image size.

A family's `defaults` are its recipe for 28-px digits; a rung of its `recipe` replaces some of them for larger
images (network width, batch, learning rates, regularisation, EMA). The config is resolved in this order:

    trainer defaults  <-  the family's defaults  <-  the rung for the data's image size  <-  --config, flags, --set

so every entry can be overridden, and the run's config.yaml records what was used. The README's recipe tables
are rendered from these rungs (models/describe.py), and `--show-config` prints the resolved values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence


# settings that say how the data is read: the data is read before its rung is known, so no rung may set them
READS_DATA = ("data", "size", "alpha")


@dataclass(frozen=True)
class Rung:
    """Images whose side is at most `upto` pixels (and more than the rung before) take `settings`."""

    upto: int
    settings: Mapping[str, Any] = field(default_factory=dict)  # dotted keys: {"optim.G.lr": 2e-4}
    why: str = ""  # where the values come from: a paper, or a measurement and its command


def rung_for(recipe: Sequence[Rung], size: Optional[int]) -> Optional[Rung]:
    """The rung an image of `size` pixels takes: the first whose `upto` it does not exceed; the last beyond them all."""
    if not recipe or size is None:
        return None
    for rung in recipe:
        if size <= rung.upto:
            return rung
    return recipe[-1]


def nested(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """{"optim.G.lr": 2e-4} -> {"optim": {"G": {"lr": 2e-4}}}."""
    out: Dict[str, Any] = {}
    for key, value in settings.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def image_of(info: Mapping[str, Any], count: int) -> Dict[str, Any]:
    """What a recipe reads of the data: its image size, channels and number of images."""
    return {"size": info["size"], "channels": info["channels"], "count": count}
