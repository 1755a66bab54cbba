"""The metric formulas on cases with known answers: Fréchet distance, KID, precision/recall,
density/coverage."""
import numpy as np
import pytest
import torch

from ganforge.errors import UserError
from ganforge.metrics.frechet import feature_stats, fid_from_features, frechet_distance
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.prdc import density_coverage, knn_radii, precision_recall


def _random_rotation(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_frechet_matches_closed_form_for_commuting_covariances():
    # With S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(0)
    d = 16
    q = _random_rotation(d, rng)
    a, b = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_of_two_one_dimensional_gaussians():
    # N(1, 2^2) vs N(4, 3^2): (1 - 4)^2 + (2 - 3)^2 = 10.
    assert frechet_distance([1.0], [[4.0]], [4.0], [[9.0]]) == pytest.approx(10.0, rel=1e-12)


def test_frechet_on_singular_covariances():
    # Orthogonal rank-1 covariances: (S1 S2)^(1/2) = 0, so FD = tr S1 + tr S2 + |dmu|^2 (scipy's sqrtm
    # needs its small-diagonal fallback here).
    s1, s2 = np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 4.0, 0.0])
    assert frechet_distance(np.zeros(3), s1, np.ones(3), s2) == pytest.approx(5.0 + 3.0, rel=1e-9)
    # Fewer samples than dimensions: rank-deficient statistics, yet a set is at distance 0 from itself
    # and |c|^2 from itself shifted by c.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 40))
    stats = feature_stats(x)
    # (square roots of rounding-level eigenvalues leave ~1e-7 of the trace, as with scipy's sqrtm)
    assert abs(frechet_distance(*stats, *stats)) < 1e-6 * np.trace(stats[1])
    shift = np.full(40, 0.5)
    assert frechet_distance(*stats, *feature_stats(x + shift)) == pytest.approx(40 * 0.25, abs=1e-6 * np.trace(stats[1]))


def test_low_rank_fid_equals_the_full_fid():
    # Fewer images than dimensions takes the SVD route; it must agree with the eigendecomposition one.
    rng = np.random.default_rng(6)
    a, b = np.abs(rng.normal(size=(30, 64))), np.abs(rng.normal(size=(25, 64))) * 1.1 + 0.05
    full = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid_from_features(a, b) == pytest.approx(full, rel=1e-7)
    assert abs(fid_from_features(a, a)) < 1e-9 * np.trace(feature_stats(a)[1])


def test_feature_stats_use_the_unbiased_covariance():
    x = np.random.default_rng(2).normal(size=(7, 3))
    mu, sigma = feature_stats(x)
    centred = x - x.mean(0)
    assert np.allclose(sigma, centred.T @ centred / 6)
    assert np.allclose(mu, x.mean(0))


def _brute_force_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


def test_kid_equals_the_unbiased_mmd_estimate_when_the_subset_is_everything():
    # 1,500 rows also crosses the kernel's row blocks.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 8)).astype(np.float32)
    y = (rng.normal(size=(1500, 8)) * 1.2 + 0.1).astype(np.float32)
    mean, std = kernel_inception_distance(x, y, num_subsets=3, max_subset_size=1500)
    expected = _brute_force_mmd2(x.astype(np.float64), y.astype(np.float64))
    assert mean == pytest.approx(expected, rel=1e-5)
    assert std < 1e-12 * abs(expected) + 1e-15  # every subset is the whole set


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(4)
    x = np.abs(rng.normal(size=(600, 64))).astype(np.float32)
    y = np.abs(rng.normal(size=(600, 64))).astype(np.float32)
    same, same_std = kernel_inception_distance(x, y, num_subsets=20, max_subset_size=200, seed=0)
    shifted, _ = kernel_inception_distance(x, y + 0.3, num_subsets=20, max_subset_size=200, seed=0)
    assert abs(same) < 3 * same_std
    assert shifted > 20 * max(abs(same), same_std)
    # The seed picks the subsets: the same seed gives the same number.
    assert kernel_inception_distance(x, y + 0.3, num_subsets=20, max_subset_size=200, seed=0)[0] == shifted


def test_kid_refuses_a_single_image():
    with pytest.raises(UserError):
        kernel_inception_distance(np.ones((1, 4)), np.ones((5, 4)))


def _ring(positions, count=100, radius=10.0):
    angle = 2 * np.pi * np.asarray(positions, dtype=np.float64) / count
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius


def test_precision_recall_density_coverage_on_a_ring():
    # 100 real points evenly on a circle, generated ones half-way between them. Real k-NN radii: k=3 ->
    # 2 steps, k=5 -> 3 steps. Each generated point lies within 3 steps of 6 real points, so density is
    # 6 / 5 = 1.2; every real ball holds a generated point.
    real, fake = _ring(np.arange(100)), _ring(np.arange(100) + 0.5)
    assert precision_recall(real, fake) == (1.0, 1.0)
    density, coverage = density_coverage(real, fake)
    assert density == pytest.approx(1.2)
    assert coverage == 1.0


def test_recall_and_coverage_drop_when_half_the_ring_is_missing():
    # Generated points only on positions 0.5 .. 49.5. Their own 3-NN radius is 2 steps inside the arc and
    # 3 steps at its two ends, so real points -2 .. 52 are reached: recall 55 / 100. Coverage: the real
    # balls (radius 3 steps) holding a generated point are again those of -2 .. 52: 55 / 100.
    real, fake = _ring(np.arange(100)), _ring(np.arange(50) + 0.5)
    precision, recall = precision_recall(real, fake)
    assert precision == 1.0
    assert recall == pytest.approx(0.55)
    density, coverage = density_coverage(real, fake)
    assert coverage == pytest.approx(0.55)
    assert density == pytest.approx(1.2)


def test_disjoint_clouds_score_zero():
    real = _ring(np.arange(100))
    fake = real + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_knn_radii_in_blocks_match_a_full_sort():
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(5000, 3)).astype(np.float32))
    radii = knn_radii(x, 3)  # 5,000 x 5,000 distances do not fit one block
    full = torch.cdist(x.double(), x.double()).pow(2).sort(dim=1).values[:, 3]
    assert torch.allclose(radii.double(), full, rtol=1e-4, atol=1e-6)


def test_knn_metrics_refuse_too_few_images():
    with pytest.raises(UserError, match="k=3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
