"""Names callers import from here: the embedded digits (data/mnist5k.py) and EMBEDDED, the catalogue's datasets
that need no download as name -> (loader, description)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Iterator, Tuple

from ganforge.data.base import ImageData
from ganforge.data.catalogue import CATALOGUE, Request
from ganforge.data.mnist5k import DIGITS, mnist5k

__all__ = ["DIGITS", "EMBEDDED", "mnist5k"]


class _Offline(Mapping):
    """A live view of the catalogue, so that datasets registered later appear in it too."""

    def __getitem__(self, name: str) -> Tuple[Callable[[], ImageData], str]:
        dataset = CATALOGUE[name]
        if dataset.download:
            raise KeyError(name)
        return (lambda: dataset.load(Request())), dataset.description

    def __iter__(self) -> Iterator[str]:
        return (name for name, dataset in list(CATALOGUE.items()) if not dataset.download)

    def __len__(self) -> int:
        return sum(1 for _ in self)


EMBEDDED = _Offline()
