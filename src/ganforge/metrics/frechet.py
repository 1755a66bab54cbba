"""Fréchet distance between Gaussians fitted to two sets of features (FID and the digit-space cFD)."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def feature_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, D) features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) equals Tr((S1^(1/2) S2 S1^(1/2))^(1/2)), whose argument is symmetric positive
    semi-definite, so it comes from a symmetric eigendecomposition: no complex parts and no failure on a
    singular covariance (where scipy's sqrtm needs the small-diagonal fallback).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape} vs {mu2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
