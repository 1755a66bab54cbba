"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

The unbiased estimate of the squared MMD between the two feature distributions with the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets of equal size, as NVlabs'
metric code computes it. Unlike FID it is unbiased in N, so small-N values are comparable.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from ganforge.errors import UserError

_ROWS_PER_BLOCK = 1024  # kernel rows in memory at once: (1024, N) float64


def _subset_kernel_sums(a: torch.Tensor, b: torch.Tensor, in_a: torch.Tensor, in_b: torch.Tensor) -> torch.Tensor:
    """For every subset s, sum_{i in A_s, j in B_s} k(a_i, b_j), computed block by block so the full
    (N, M) kernel matrix never exists. ``in_a`` (N, S) and ``in_b`` (M, S) are 0/1 membership columns."""
    d = a.shape[1]
    sums = torch.zeros(in_a.shape[1], dtype=torch.float64)
    for start in range(0, a.shape[0], _ROWS_PER_BLOCK):
        rows = slice(start, start + _ROWS_PER_BLOCK)
        kernel = (a[rows] @ b.T).double().div_(d).add_(1).pow_(3)  # (rows, M)
        sums += ((kernel @ in_b) * in_a[rows]).sum(dim=0)
    return sums


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> Tuple[float, float]:
    """KID between (N, D) and (M, D) features: mean and standard deviation of the unbiased MMD^2 over
    ``num_subsets`` pairs of random subsets of size min(N, M, ``max_subset_size``)."""
    a = torch.as_tensor(np.asarray(features_a, dtype=np.float32))
    b = torch.as_tensor(np.asarray(features_b, dtype=np.float32))
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) features, got {tuple(a.shape)} and {tuple(b.shape)}")
    m = min(a.shape[0], b.shape[0], max_subset_size)
    if m < 2:
        raise UserError(f"KID needs at least 2 images in each set, got {a.shape[0]} and {b.shape[0]}")
    rng = np.random.default_rng(seed)
    in_a = torch.zeros(a.shape[0], num_subsets, dtype=torch.float64)
    in_b = torch.zeros(b.shape[0], num_subsets, dtype=torch.float64)
    for s in range(num_subsets):
        in_a[rng.choice(a.shape[0], m, replace=False), s] = 1
        in_b[rng.choice(b.shape[0], m, replace=False), s] = 1
    d = a.shape[1]
    # The unbiased estimate leaves out k(x_i, x_i): subtract each subset's diagonal.
    diag_a = ((a * a).sum(1).double() / d + 1) ** 3 @ in_a
    diag_b = ((b * b).sum(1).double() / d + 1) ** 3 @ in_b
    within = (_subset_kernel_sums(a, a, in_a, in_a) - diag_a + _subset_kernel_sums(b, b, in_b, in_b) - diag_b) / (m * (m - 1))
    across = _subset_kernel_sums(a, b, in_a, in_b) * 2 / (m * m)
    mmd2 = (within - across).numpy()
    return float(mmd2.mean()), float(mmd2.std())
