"""Tests of the label-free (contrastive) encoder, its cache, and metrics computed with it."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import DataError, ModelFileError
from tfgan_opt.evaluation import features, label_free

_SIDE = 16


def _blob_images(num_images, seed=0):
    """Unlabelled images, each one different: smooth random patterns (4x4 noise upsampled)."""
    rng = np.random.default_rng(seed)
    low_res = rng.uniform(-1, 1, (num_images, 4, 4, 1)).astype(np.float32)
    return np.clip(tf.image.resize(low_res, (_SIDE, _SIDE)).numpy(), -1, 1)


def _train_kwargs():
    return {"steps": 30, "batch_size": 32, "seed": 0}


@pytest.fixture(scope="module")
def images():
    return _blob_images(120)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("feature_cache"))


@pytest.fixture(scope="module")
def extractor(images, cache_dir):
    return label_free.get_or_train_label_free_extractor(images, cache_dir, **_train_kwargs())


def test_encoder_matches_views_of_held_out_images_far_above_chance(extractor):
    # 24 held-out images: chance is 1 / 47 of picking the partner view.
    assert 0.5 <= extractor.view_accuracy <= 1.0


def test_activations_have_documented_shape_and_no_logits(extractor, images):
    activations, logits = extractor.activations_and_logits(images[:7], batch_size=3)
    assert logits is None
    assert activations.shape == (7, 96) and activations.dtype == np.float64
    np.testing.assert_allclose(activations, extractor.encoder(images[:7]).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_cache_second_call_loads_from_disk_without_retraining(extractor, images, cache_dir,
                                                              monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("retrained although a cache entry exists")

    monkeypatch.setattr(label_free, "train_encoder", fail)
    loaded = label_free.get_or_train_label_free_extractor(images, cache_dir, **_train_kwargs())
    np.testing.assert_allclose(loaded.activations_and_logits(images[:5])[0],
                               extractor.activations_and_logits(images[:5])[0], rtol=1e-6)
    np.testing.assert_allclose(loaded.view_accuracy, extractor.view_accuracy, rtol=0)


def test_cache_entry_is_its_own_not_the_classifiers(images, cache_dir):
    fingerprint = label_free.encoder_fingerprint(images, **_train_kwargs())
    entry = os.path.join(cache_dir, fingerprint)
    assert sorted(os.listdir(entry)) == ["encoder.keras", "info.json"]
    labels = np.arange(len(images)) % 2
    assert fingerprint != features.dataset_fingerprint(images, labels, 2, **_train_kwargs())
    assert fingerprint != label_free.encoder_fingerprint(images, **{**_train_kwargs(), "steps": 31})
    assert fingerprint != label_free.encoder_fingerprint(images[1:], **_train_kwargs())


def test_a_corrupt_cache_entry_fails_with_one_line_naming_it(images, tmp_path):
    entry = tmp_path / label_free.encoder_fingerprint(images, **_train_kwargs())
    entry.mkdir()
    (entry / "info.json").write_text('{"view_accuracy": 0.5}')
    (entry / "encoder.keras").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="delete .* to retrain"):
        label_free.get_or_train_label_free_extractor(images, str(tmp_path), **_train_kwargs())


def test_metrics_without_labels_mark_label_metrics_not_applicable(extractor, images):
    results = features.compute_metrics(extractor, images[:60], images[60:])
    assert results["not_applicable"] == list(features.LOGIT_METRICS + features.COVERAGE_METRICS)
    assert all(results[key] is None for key in results["not_applicable"])
    for key in ("frechet_distance", "kid_mean", "precision", "recall"):
        assert np.isfinite(results[key])
    floor = features.real_noise_floor(extractor, images)
    assert floor["not_applicable"] == results["not_applicable"]


def test_collapsed_images_score_worse_than_the_real_distribution(extractor, images):
    diverse = features.compute_metrics(extractor, images[:60], images[60:])
    collapsed = features.compute_metrics(extractor, images[:60],
                                         np.tile(images[60:65], (12, 1, 1, 1)))  # five modes
    assert collapsed["frechet_distance"] > 3 * diverse["frechet_distance"]
    assert collapsed["recall"] < diverse["recall"]


@pytest.mark.parametrize("shape", [(8, 8, 1), (8, 8, 3), (28, 28, 1), (32, 32, 3),
                                   (128, 128, 3)])
def test_encoder_builds_for_supported_shapes_with_small_flatten(shape):
    encoder = label_free.build_encoder(shape)
    assert encoder.output_shape == [(None, 64), (None, 32)]
    assert label_free.feature_model(encoder).output_shape == (None, 96)
    flatten = [layer for layer in encoder.layers if layer.name.startswith("flatten")][0]
    assert flatten.input_shape[1] <= 7


def test_features_are_the_projection_and_its_softmax_over_unit_prototypes(extractor, images):
    # Training renormalizes the prototypes after every step, so the assignment is a softmax of
    # cosines (SwAV's temperature 0.1) between the projection and each prototype.
    kernel = extractor.encoder.get_layer(label_free.PROTOTYPE_LAYER_NAME).kernel.numpy()
    np.testing.assert_allclose(np.linalg.norm(kernel, axis=0), 1.0, rtol=1e-5)
    projection = extractor.encoder.get_layer("projection").output
    projections = keras.Model(extractor.encoder.input, projection)(images[:6]).numpy()
    logits = (projections / np.linalg.norm(projections, axis=1, keepdims=True)) @ kernel / 0.1
    assignment = np.exp(logits - logits.max(axis=1, keepdims=True))
    assignment /= assignment.sum(axis=1, keepdims=True)
    features = extractor.activations_and_logits(images[:6])[0]
    np.testing.assert_allclose(features[:, :64], projections, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features[:, 64:], assignment, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 4, 1), (16, 8, 1), (16, 16, 2)])
def test_encoder_rejects_unsupported_shapes(shape):
    with pytest.raises(DataError, match="square images"):
        label_free.build_encoder(shape)


def test_training_rejects_too_few_images():
    with pytest.raises(DataError, match="at least 16"):
        label_free.train_encoder(_blob_images(8), steps=1)


def test_augment_keeps_shape_and_range_and_is_deterministic_per_seed(images):
    first = label_free.augment(tf.constant(images[:8]), tf.constant([1, 2])).numpy()
    again = label_free.augment(tf.constant(images[:8]), tf.constant([1, 2])).numpy()
    other = label_free.augment(tf.constant(images[:8]), tf.constant([1, 3])).numpy()
    assert first.shape == images[:8].shape
    assert first.min() >= -1 and first.max() <= 1
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.01


def _nt_xent_reference(first, second, temperature):
    """SimCLR's loss written out view by view (Chen et al. 2020, eq. 1)."""
    views = np.concatenate([first, second])
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    n = len(first)
    losses = []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        similarities = np.exp(views @ views[i] / temperature)
        losses.append(-np.log(similarities[partner] / (similarities.sum() - similarities[i])))
    return np.mean(losses)


def test_nt_xent_loss_matches_a_view_by_view_reference():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss = label_free.nt_xent_loss(tf.constant(first, tf.float32), tf.constant(second, tf.float32),
                                   0.5)
    np.testing.assert_allclose(float(loss), _nt_xent_reference(first, second, 0.5), rtol=1e-5)
    # Identical partners far from every other view: the loss approaches its minimum of 0.
    basis = np.eye(5, 8, dtype=np.float32)
    np.testing.assert_allclose(float(label_free.nt_xent_loss(basis, basis, 0.05)), 0.0,
                               atol=1e-6)


def _sinkhorn_reference(similarities, epsilon, iterations):
    """Sinkhorn-Knopp written with scaling vectors (Cuturi 2013): P = diag(u) exp(S / eps) diag(v),
    v fixing the prototypes' mass to 1/K, then u the images' to 1/B, times B (rows sum to 1)."""
    kernel = np.exp(similarities / epsilon)
    num_images, num_prototypes = kernel.shape
    u, v = np.ones(num_images), np.ones(num_prototypes)
    for _ in range(iterations):
        v = (1.0 / num_prototypes) / (kernel.T @ u)
        u = (1.0 / num_images) / (kernel @ v)
    return num_images * u[:, None] * kernel * v[None, :]


def test_sinkhorn_codes_match_a_scaling_vector_reference_and_spread_the_batch():
    rng = np.random.default_rng(0)
    similarities = rng.uniform(-1, 1, (12, 4))
    codes = label_free.sinkhorn_codes(tf.constant(similarities, tf.float32), 0.5, 3).numpy()
    np.testing.assert_allclose(codes, _sinkhorn_reference(similarities, 0.5, 3), rtol=1e-4)
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-5)
    # Every image prefers prototype 0, yet with enough rounds each prototype gets 1/4 of the batch.
    skewed = np.tile([0.9, 0.1, 0.0, -0.2], (12, 1)) + rng.normal(0, 0.3, (12, 4))
    codes = label_free.sinkhorn_codes(tf.constant(skewed, tf.float32), 0.5, 50).numpy()
    np.testing.assert_allclose(codes.sum(axis=0), 3.0, rtol=1e-3)


def test_swapped_prediction_loss_matches_cross_entropy_with_the_partners_codes():
    rng = np.random.default_rng(1)
    first, second = rng.uniform(-1, 1, (6, 5)), rng.uniform(-1, 1, (6, 5))
    loss = label_free.swapped_prediction_loss(tf.constant(first, tf.float32),
                                              tf.constant(second, tf.float32), 0.1)
    codes = [_sinkhorn_reference(x, 0.05, 3) for x in (first, second)]

    def log_softmax(x):
        x = x / 0.1
        return x - x.max(axis=1, keepdims=True) - np.log(
            np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))

    expected = -0.5 * np.mean((codes[1] * log_softmax(first)).sum(axis=1)
                              + (codes[0] * log_softmax(second)).sum(axis=1))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)
