"""Tests of the metric math against independent, deliberately naive float64 implementations."""

import itertools

import numpy as np
import pytest

from tfgan_opt.evaluation import metrics


def _random_activations(seed, num_samples=60, dim=8, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim))  # Correlated features, so covariances are not diagonal.
    return scale * rng.normal(size=(num_samples, dim)) @ mixing + shift


def _reference_frechet(real, fake):
    """Eigenvalue form: Tr sqrt(S_r S_f) = sum of square roots of the product's eigenvalues."""
    def moments(x):
        mu = x.sum(axis=0) / x.shape[0]
        centred = x - mu
        return mu, centred.T @ centred / (x.shape[0] - 1)

    mu_r, sigma_r = moments(real)
    mu_f, sigma_f = moments(fake)
    eigenvalues = np.linalg.eigvals(sigma_r @ sigma_f).real
    trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    return np.sum((mu_r - mu_f) ** 2) + np.trace(sigma_r) + np.trace(sigma_f) - 2 * trace_sqrt


def _reference_unbiased_mmd2(x, y):
    """The unbiased MMD^2 estimator written as explicit sums over i != j."""
    dim = x.shape[1]

    def kernel(a, b):
        return (float(np.dot(a, b)) / dim + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(kernel(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(kernel(y[i], y[j]) for i, j in itertools.permutations(range(n), 2))
    xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def _reference_classifier_score(logits):
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    marginal = probabilities.mean(axis=0)
    kl = [np.sum(p * np.log(p / marginal)) for p in probabilities]
    return np.exp(np.mean(kl))


def _reference_precision_recall(real, fake, k):
    def radii(points):
        result = []
        for i, point in enumerate(points):
            others = [np.linalg.norm(point - q) for j, q in enumerate(points) if j != i]
            result.append(sorted(others)[k - 1])
        return result

    def fraction_inside(queries, references, reference_radii):
        inside = [any(np.linalg.norm(q - r) <= radius
                      for r, radius in zip(references, reference_radii))
                  for q in queries]
        return np.mean(inside)

    return (fraction_inside(fake, real, radii(real)), fraction_inside(real, fake, radii(fake)))


# Frechet distance.

def test_frechet_matches_eigenvalue_reference_on_random_activations():
    real = _random_activations(0)
    fake = _random_activations(1, num_samples=50, shift=0.3, scale=1.2)
    np.testing.assert_allclose(metrics.frechet_distance_from_activations(real, fake),
                               _reference_frechet(real, fake), rtol=1e-4)


def test_frechet_of_identical_sets_is_zero():
    real = _random_activations(2)
    np.testing.assert_allclose(metrics.frechet_distance_from_activations(real, real.copy()), 0.0,
                               atol=1e-8)


def test_frechet_of_shifted_set_is_squared_shift_norm():
    real = _random_activations(3)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.0, -1.0, 0.25])
    np.testing.assert_allclose(metrics.frechet_distance_from_activations(real, real + shift),
                               np.sum(shift ** 2), rtol=1e-6)


def test_frechet_of_identical_sets_is_zero_when_covariances_are_singular():
    real = _random_activations(4, num_samples=5, dim=12)  # Rank 4 covariance in 12 dimensions.
    # sqrt turns rounding noise in the zero eigenvalues (~1e-16 of the scale) into ~1e-8 of it.
    scale = np.trace(np.cov(real, rowvar=False))
    np.testing.assert_allclose(metrics.frechet_distance_from_activations(real, real.copy()), 0.0,
                               atol=1e-6 * scale)


def test_frechet_with_singular_covariances_stays_close_to_eigenvalue_reference():
    real = _random_activations(5, num_samples=6, dim=12)
    fake = _random_activations(6, num_samples=7, dim=12, shift=0.5)
    np.testing.assert_allclose(metrics.frechet_distance_from_activations(real, fake),
                               _reference_frechet(real, fake), rtol=1e-4)


@pytest.mark.parametrize("real_shape, fake_shape, message", [
    ((10,), (10, 3), "2-D"),
    ((10, 3), (10, 4), "feature dim"),
    ((1, 3), (10, 3), "at least 2 rows"),
])
def test_frechet_rejects_bad_shapes_with_clear_message(real_shape, fake_shape, message):
    with pytest.raises(ValueError, match=message):
        metrics.frechet_distance_from_activations(np.zeros(real_shape), np.zeros(fake_shape))


# Kernel inception distance.

def test_kid_single_full_subset_matches_explicit_unbiased_sum():
    real = _random_activations(5, num_samples=20, dim=5)
    fake = _random_activations(6, num_samples=20, dim=5, shift=0.5)
    mean, std = metrics.kernel_inception_distance_from_activations(
        real, fake, num_subsets=1, max_subset_size=20)
    np.testing.assert_allclose(mean, _reference_unbiased_mmd2(real, fake), rtol=1e-10)
    assert std == 0.0


def test_kid_subsets_use_smallest_set_size_and_average_explicit_estimates():
    real = _random_activations(7, num_samples=15, dim=4)
    fake = _random_activations(8, num_samples=12, dim=4, shift=0.2)
    mean, std = metrics.kernel_inception_distance_from_activations(real, fake, num_subsets=3,
                                                                   seed=4)
    rng = np.random.default_rng(4)
    estimates = []
    for _ in range(3):
        rows_real = rng.choice(15, 12, replace=False)
        rows_fake = rng.choice(12, 12, replace=False)
        estimates.append(_reference_unbiased_mmd2(real[rows_real], fake[rows_fake]))
    np.testing.assert_allclose([mean, std], [np.mean(estimates), np.std(estimates)], rtol=1e-10)


def test_kid_is_larger_for_more_distant_distributions():
    real = _random_activations(9, num_samples=100)
    near, _ = metrics.kernel_inception_distance_from_activations(
        real, _random_activations(10, num_samples=100, shift=0.1))
    far, _ = metrics.kernel_inception_distance_from_activations(
        real, _random_activations(10, num_samples=100, shift=2.0))
    assert far > near


# Classifier score.

def test_classifier_score_matches_softmax_reference():
    logits = np.random.default_rng(11).normal(size=(30, 6)) * 2
    np.testing.assert_allclose(metrics.classifier_score_from_logits(logits),
                               _reference_classifier_score(logits), rtol=1e-10)


def test_classifier_score_of_uniform_logits_is_one():
    np.testing.assert_allclose(metrics.classifier_score_from_logits(np.zeros((40, 10))), 1.0,
                               rtol=1e-12)


def test_classifier_score_of_confident_even_predictions_is_num_classes():
    num_classes = 7
    logits = np.tile(np.eye(num_classes) * 1000.0, (5, 1))  # Saturated: naive softmax overflows.
    np.testing.assert_allclose(metrics.classifier_score_from_logits(logits), num_classes,
                               rtol=1e-9)


# Precision and recall.

def test_precision_recall_match_brute_force_reference():
    real = _random_activations(12, num_samples=40, dim=3)
    fake = _random_activations(13, num_samples=35, dim=3, shift=1.0)
    np.testing.assert_allclose(metrics.precision_recall_from_activations(real, fake, k=3),
                               _reference_precision_recall(real, fake, k=3), rtol=1e-12)


def test_precision_recall_of_identical_sets_are_one():
    real = _random_activations(14, num_samples=50)
    np.testing.assert_allclose(metrics.precision_recall_from_activations(real, real.copy()),
                               (1.0, 1.0))


def test_precision_recall_of_far_apart_sets_are_zero():
    real = _random_activations(15, num_samples=50)
    np.testing.assert_allclose(metrics.precision_recall_from_activations(real, real + 1e3),
                               (0.0, 0.0))


def test_precision_recall_is_unchanged_when_distances_span_several_memory_blocks(monkeypatch):
    real = _random_activations(16, num_samples=45, dim=3)
    fake = _random_activations(17, num_samples=38, dim=3, shift=0.5)
    expected = metrics.precision_recall_from_activations(real, fake)
    monkeypatch.setattr(metrics, "_DISTANCE_BLOCK_ELEMENTS", 100)  # Blocks of 2 rows.
    np.testing.assert_allclose(metrics.precision_recall_from_activations(real, fake), expected)


def test_precision_recall_rejects_sets_not_larger_than_k():
    with pytest.raises(ValueError, match="at least 4 rows"):
        metrics.precision_recall_from_activations(np.zeros((3, 2)), np.zeros((10, 2)), k=3)


# Mode coverage.

def _one_hot_logits(classes, num_classes):
    return np.eye(num_classes)[np.asarray(classes)] * 5.0


def test_mode_coverage_counts_classes_and_histogram():
    real_labels = np.repeat(np.arange(4), 25)  # 25 of each of 4 classes.
    fake_classes = [0] * 50 + [1] * 49 + [2]  # Class 2 holds 1 sample of its expected 25.
    coverage = metrics.mode_coverage_from_logits(_one_hot_logits(fake_classes, 4), real_labels, 4)
    assert coverage["classes_covered"] == 3
    assert coverage["classes_covered_10pct"] == 2
    assert coverage["class_histogram"] == [50, 49, 1, 0]


def test_mode_coverage_kl_matches_smoothed_formula_and_is_zero_for_matching_mix():
    real_labels = np.array([0, 0, 1, 2])
    matching = metrics.mode_coverage_from_logits(_one_hot_logits([0, 0, 1, 2], 3), real_labels, 3)
    np.testing.assert_allclose(matching["kl_to_real"], 0.0, atol=1e-12)

    skewed = metrics.mode_coverage_from_logits(_one_hot_logits([0, 0, 0, 0], 3), real_labels, 3)
    q = np.array([1.0, 0.0, 0.0]) + 1e-6
    p = np.array([0.5, 0.25, 0.25]) + 1e-6
    q, p = q / q.sum(), p / p.sum()
    np.testing.assert_allclose(skewed["kl_to_real"], np.sum(q * np.log(q / p)), rtol=1e-10)


def test_mode_coverage_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="real_labels must lie in"):
        metrics.mode_coverage_from_logits(_one_hot_logits([0, 1], 3), np.array([0, 3]), 3)
