"""Fréchet distance between Gaussians fitted to two sets of features (FID and the digit-space cFD), and FID of
two feature sets, whole or within each class."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from ganforge.errors import UserError


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


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    """FID of two (N, D) feature sets (unbiased covariances).

    With fewer images than dimensions (per-class FID, small N) the covariances have rank < D and
    Tr((S1 S2)^(1/2)) is the nuclear norm of A B^T / sqrt((n1 - 1)(n2 - 1)) for the centred features A, B:
    an (n1, n2) SVD instead of (D, D) eigendecompositions, exact and far cheaper at D = 2048.
    """
    a, b = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    if min(len(a), len(b)) > a.shape[1]:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    if min(len(a), len(b)) < 2:
        raise UserError(f"FID needs at least 2 images in each set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    a, b = a - mu_a, b - mu_b
    scale = np.sqrt((len(a) - 1) * (len(b) - 1))
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum() / scale
    diff = mu_a - mu_b
    return float(diff @ diff + (a * a).sum() / (len(a) - 1) + (b * b).sum() / (len(b) - 1) - 2 * tr_covmean)


def class_fids(fake: np.ndarray, fake_labels, real: np.ndarray, real_labels, classes: Sequence[str]) -> Dict[str, float]:
    """FID within each class of the real labels ("fid_class/NAME"), and their mean ("fid_class")."""
    if fake_labels is None or real_labels is None:
        raise UserError("fid_class needs class labels for both image sets (a class-conditional model, or labelled data)")
    fake_labels, real_labels = np.asarray(fake_labels), np.asarray(real_labels)
    out = {}
    for c in np.unique(real_labels):
        f, r = fake[fake_labels == c], real[real_labels == c]
        if len(f) < 2 or len(r) < 2:
            continue  # a class with fewer than 2 images has no covariance
        name = classes[c] if c < len(classes) else str(c)
        out[f"fid_class/{name}"] = fid_from_features(f, r)
    if not out:
        raise UserError("fid_class: no class has at least 2 images in both sets")
    out["fid_class"] = float(np.mean(list(out.values())))
    return out
