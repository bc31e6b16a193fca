"""Conditional metrics (issue 15): per-class accuracy and Frechet distance, class-row grids."""

import numpy as np
import pytest

from tfgan_opt.evaluation import conditional, metrics


def _one_hot_logits(predicted, num_classes):
    logits = np.zeros((len(predicted), num_classes))
    logits[np.arange(len(predicted)), predicted] = 5.0
    return logits


def test_accuracy_counts_samples_the_classifier_assigns_to_the_class_asked_for():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 4))
    real_labels = np.arange(60) % 3
    fake_labels = np.arange(12) % 3  # 4 samples per class
    predicted = fake_labels.copy()
    predicted[[1, 4]] = 0            # class 1: 2 of 4 right
    predicted[2] = 1                 # class 2: 3 of 4 right
    fake = rng.normal(size=(12, 4))
    results = conditional.conditional_metrics_from_features(
        real, real_labels, fake, _one_hot_logits(predicted, 3), fake_labels, 3)
    np.testing.assert_allclose(results["class_accuracy"], [1.0, 0.5, 0.75])
    np.testing.assert_allclose(results["conditional_accuracy"], 9 / 12)
    np.testing.assert_allclose(results["worst_class_accuracy"], 0.5)


def test_class_fd_compares_each_class_with_its_own_real_images():
    rng = np.random.default_rng(1)
    real = np.concatenate([rng.normal(0, 1, (200, 3)), rng.normal(5, 1, (200, 3))])
    real_labels = np.repeat([0, 1], 200)
    # Class 0 samples drawn like class 0's real images; class 1 samples drawn like class 0 too.
    fake = rng.normal(0, 1, (400, 3))
    fake_labels = np.repeat([0, 1], 200)
    results = conditional.conditional_metrics_from_features(real, real_labels, fake, None,
                                                            fake_labels, 2)
    expected = [metrics.frechet_distance_from_activations(real[:200], fake[:200]),
                metrics.frechet_distance_from_activations(real[200:], fake[200:])]
    np.testing.assert_allclose(results["class_fd"], expected, rtol=1e-10)
    assert results["class_fd"][0] < 0.2 < 70 < results["class_fd"][1]  # 3 dims x 5^2 = 75
    np.testing.assert_allclose(results["mean_class_fd"], np.mean(expected))
    assert results["conditional_accuracy"] is None and results["class_accuracy"] == [None, None]


def test_a_class_without_samples_has_no_fd():
    real = np.random.default_rng(2).normal(size=(20, 2))
    results = conditional.conditional_metrics_from_features(
        real, np.arange(20) % 2, real[:6], None, np.zeros(6, int), 3)
    assert results["class_fd"][1] is None and results["class_fd"][2] is None
    assert results["class_fd"][0] is not None


class _LabelPainter:
    """A fake conditional generator function: the image of class c is filled with c / 10."""
    latent_dim = 3

    def __call__(self, inputs):
        z, labels = inputs
        assert z.shape == (len(labels), 3)
        return np.broadcast_to(np.asarray(labels, np.float32)[:, None, None, None] / 10,
                               (len(labels), 2, 2, 1)).copy()


def test_generation_asks_for_every_class_in_turn_and_grids_have_one_row_per_class():
    images, labels = conditional.generate_for_classes(_LabelPainter(), 7, 3, batch_size=2)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_allclose(images[:, 0, 0, 0], labels / 10)
    rows = conditional.class_rows(_LabelPainter(), 3, columns=4)
    np.testing.assert_allclose(rows[:, 0, 0, 0], np.repeat([0.0, 0.1, 0.2], 4), atol=1e-7)


def test_compute_needs_real_labels():
    with pytest.raises(ValueError, match="need the real images' labels"):
        conditional.compute_conditional_metrics(None, np.zeros((4, 2, 2, 1)), None,
                                                np.zeros((4, 2, 2, 1)), np.zeros(4), 2)
