"""Fidelity and diversity as separate numbers, from k-nearest-neighbour balls in feature space.

- Precision / recall (Kynkäänniemi et al. 2019, k = 3): the share of generated samples inside the real
  manifold (the union of balls around real samples reaching their k-th nearest real neighbour), and the
  share of real samples inside the generated manifold.
- Density / coverage (Naeem et al. 2020, k = 5): how many real balls contain each generated sample on
  average, divided by k (about 1 for matching distributions, robust to real outliers), and the share of
  real balls that contain at least one generated sample.

Distances are computed a block of rows at a time, so memory stays bounded for any N.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np
import torch

from ganforge.errors import UserError

_BLOCK_ELEMENTS = 1 << 24  # distances held at once (64 MB of float32)


def _as_tensor(features) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if x.dim() != 2:
        raise ValueError(f"need (N, D) features, got shape {tuple(x.shape)}")
    return x


def _distance_blocks(rows: torch.Tensor, cols: torch.Tensor) -> Iterator[Tuple[slice, torch.Tensor]]:
    """Squared Euclidean distances, yielded as (row slice, (rows in slice, len(cols))) blocks."""
    cols_sq = (cols * cols).sum(1)
    step = max(1, _BLOCK_ELEMENTS // max(1, cols.shape[0]))
    for start in range(0, rows.shape[0], step):
        r = rows[start : start + step]
        d2 = (r * r).sum(1, keepdim=True) + cols_sq[None] - 2 * (r @ cols.T)
        yield slice(start, start + r.shape[0]), d2.clamp_min_(0)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each sample to its k-th nearest other sample (N,)."""
    if features.shape[0] <= k:
        raise UserError(f"k-nearest-neighbour metrics with k={k} need more than {k} images, got {features.shape[0]}")
    radii = torch.empty(features.shape[0])
    for rows, d2 in _distance_blocks(features, features):
        radii[rows] = d2.kthvalue(k + 1, dim=1).values  # the smallest is the sample itself
    return radii


def _inside_any(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(N,) bool: point lies in at least one ball (centre, radius), boundary included."""
    inside = torch.empty(points.shape[0], dtype=torch.bool)
    for rows, d2 in _distance_blocks(points, centres):
        inside[rows] = (d2 <= radii[None]).any(dim=1)
    return inside


def precision_recall(real, fake, k: int = 3) -> Tuple[float, float]:
    """Improved precision and recall of ``fake`` (M, D) against ``real`` (N, D) features."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    precision = _inside_any(fake, real, knn_radii(real, k)).double().mean()
    recall = _inside_any(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = 5) -> Tuple[float, float]:
    """Density and coverage of ``fake`` (M, D) against ``real`` (N, D) features (strict inequality, as in
    the paper's code)."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    radii = knn_radii(real, k)
    balls_containing = torch.zeros(fake.shape[0], dtype=torch.float64)
    for rows, d2 in _distance_blocks(fake, real):
        balls_containing[rows] = (d2 < radii[None]).sum(dim=1).double()
    covered = torch.empty(real.shape[0], dtype=torch.bool)
    for rows, d2 in _distance_blocks(real, fake):
        covered[rows] = d2.min(dim=1).values < radii[rows]
    return float(balls_containing.mean() / k), float(covered.double().mean())
