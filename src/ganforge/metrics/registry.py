"""One registry of the quality figures: each metric is one function, registered by name with `register_metric`.

A metric takes the samples to judge (a sample function, n -> images, labels, drawn once and shared by every
metric of one evaluation) and the real or held-out data they are compared with, and returns its figures by
name. It never sees a trainer or a model: `eval.metrics` during training (metrics/training.py) and
`ganforge eval --metrics` (metrics/evaluate.py) both resolve names here and measure through `measure`.
The built-in metrics are registered in metrics/standard.py, which importing the package runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ganforge.data import load_dataset
from ganforge.data.base import ImageData, to_float, to_uint8
from ganforge.errors import UserError
from ganforge.features.inception import load_inception
from ganforge.metrics.features import as_images, cached_features

Sample = Callable[[int], Tuple[torch.Tensor, Optional[torch.Tensor]]]
_SUBSET_SEED = 0  # the real subset does not depend on the seed: equal N means equal real images


@dataclass(frozen=True)
class Metric:
    name: str
    function: Callable[["Samples", "Real"], Dict]
    summary: str
    auto: Optional[Callable[[Dict, bool], bool]] = None  # whether `auto` picks it for (data info, conditional model)
    inception: bool = False  # its figures compare Inception features: they carry N real, the seed and the network
    decimals: Optional[int] = None  # the decimals a training log keeps (None: all)
    check: Optional[Callable[[Optional[str]], None]] = None  # refuses in one line before any image is made


METRICS: Dict[str, Metric] = {}


def register_metric(name: str, summary: str, **options) -> Callable:
    """Decorator: `@register_metric("fid", "Fréchet Inception Distance")` over `def fid(sample, real) -> dict`."""
    def register(function: Callable) -> Callable:
        METRICS[name] = Metric(name, function, summary, **options)
        return function

    return register


def resolve(spec: Union[str, Sequence[str]], info: Optional[Dict] = None, conditional: bool = False) -> List[str]:
    """The metric names a spec asks for: "a,b", a list, "auto" (those that apply to data `info` and a conditional
    or unconditional model) or "none"; an unknown name is one line listing the registered ones."""
    names = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    if names == ["none"]:
        return []
    if names == ["auto"]:
        return [m.name for m in METRICS.values() if info is not None and m.auto is not None and m.auto(info, conditional)]
    for name in names:
        if name not in METRICS:
            raise UserError(f"unknown metric '{name}'; choose from {', '.join(METRICS)} (or auto, none)")
    return names


def check(names: Sequence[str], inception: Optional[str] = None) -> None:
    """What each metric needs before any image is made (the Inception network's weights, its classification layer)."""
    for name in names:
        if METRICS[name].check is not None:
            METRICS[name].check(inception)


def measure(names: Sequence[str], sample: "Samples", real: "Real") -> Dict:
    """Every named metric's figures, in the order named (`check` first where a refusal should come before any
    image is made)."""
    figures: Dict = {}
    for name in names:
        figures.update(METRICS[name].function(sample, real))
    return figures


class Samples:
    """The images the metrics judge: `sample(n)` -> (images, labels), drawn once and shared by the metrics of one
    evaluation. images: float (n, C, H, W) in [-1, 1] or uint8 (n, C, H, W); labels: (n,) or None."""

    def __init__(self, sample: Sample, n: int, seed: int = 0, progress: bool = False):
        self.function, self.n, self.seed, self.progress = sample, n, seed, progress
        self._shared: Dict[Hashable, object] = {}

    def __call__(self, n: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        n = self.n if n is None else n
        return self.shared(("samples", n), lambda: self.function(n))

    def shared(self, key: Hashable, compute: Callable[[], object]):
        """A value derived from the samples (their features in some network), computed once per evaluation."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def floats(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The samples as float in [-1, 1], and their labels."""
        images, labels = self()
        return (to_float(images) if images.dtype == torch.uint8 else images), labels


def subset(count: int, n: Optional[int]) -> Optional[np.ndarray]:
    """Indices of a fixed random subset of n out of count (None: take all)."""
    if n is None or n >= count:
        return None
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    return np.sort(np.random.default_rng(_SUBSET_SEED).permutation(count)[:n])


def uint8_at(images: torch.Tensor, size) -> torch.Tensor:
    """uint8 images at the real set's (H, W), so both sets are seen at one resolution: generator output
    is resized (antialiased) before it is quantised, like a saved sample at the data's native size."""
    if tuple(images.shape[-2:]) != tuple(size):
        x = images.float() if images.is_floating_point() else to_float(images)
        images = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return images if images.dtype == torch.uint8 else to_uint8(images.float())


class Real:
    """The real or held-out images the samples are compared with: a dataset spec (loaded when a metric first asks)
    or a loaded set (an ImageData), of which a fixed subset of n images is kept (all with n None).
    ``inception``: the Inception weights file (None: the resolved default); ``size``: the size a spec is loaded at
    (None: the data's own), the size a model of the data works at."""

    def __init__(self, data: Union[str, ImageData], n: Optional[int] = None, inception: Optional[str] = None,
                 progress: bool = False, size: Optional[int] = None):
        self.data, self.n, self.inception, self.progress, self.size = data, n, inception, progress, size
        self._set: Optional[Tuple] = None
        self._features: Optional[np.ndarray] = None

    def _loaded(self) -> Tuple:
        if self._set is None:
            if not isinstance(self.data, ImageData):
                self.data = load_dataset(str(self.data), size=self.size)
            images, labels = as_images(self.data.images), self.data.labels
            pick = subset(len(images), self.n)
            if pick is not None:
                images, labels = images[pick], None if labels is None else labels[pick]
            self._set = (uint8_at(images, images.shape[-2:]), labels, list(self.data.classes or []))
        return self._set

    @property
    def images(self) -> torch.Tensor:
        """uint8 (N, C, H, W)."""
        return self._loaded()[0]

    @property
    def labels(self) -> Optional[torch.Tensor]:
        return self._loaded()[1]

    @property
    def classes(self) -> List[str]:
        return self._loaded()[2]

    def network(self):
        """The eager Inception network of the chosen weights (built once per process)."""
        return load_inception(self.inception)

    def inception_features(self) -> np.ndarray:
        """(N, 2048) features of the real images, cached on disk by their content."""
        if self._features is None:
            self._features = cached_features(self.images, self.network(), progress=self.progress)
        return self._features
