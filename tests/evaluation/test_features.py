"""Tests of the feature classifier, its cache, the Inception extractor and compute_metrics."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt.evaluation import features, inception
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import DataError, ModelFileError

_NUM_CLASSES = 4
_SIDE = 16


def _quadrant_images(num_images, seed=0):
    """Easy labelled data: class c is a bright 6x6 patch in quadrant c, with jitter and noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_images) % _NUM_CLASSES
    images = rng.normal(scale=0.1, size=(num_images, _SIDE, _SIDE, 1)) - 0.8
    for image, label in zip(images, labels):
        row = (label // 2) * 8 + rng.integers(0, 3)
        col = (label % 2) * 8 + rng.integers(0, 3)
        image[row:row + 6, col:col + 6] = 0.8
    return np.clip(images, -1, 1).astype(np.float32), labels.astype(np.int64)


def _train_kwargs():
    return {"epochs": 3, "seed": 0, "validation_fraction": 0.2}


@pytest.fixture(scope="module")
def data():
    return _quadrant_images(200)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("feature_cache"))


@pytest.fixture(scope="module")
def extractor(data, cache_dir):
    images, labels = data
    return features.get_or_train_feature_extractor(images, labels, _NUM_CLASSES, cache_dir,
                                                   **_train_kwargs())


def test_classifier_trains_to_high_held_out_accuracy_on_easy_data(extractor):
    assert isinstance(extractor.accuracy, float)
    assert 0.9 <= extractor.accuracy <= 1.0


def test_activations_and_logits_have_documented_shapes_and_dtype(extractor, data):
    images, _ = data
    activations, logits = extractor.activations_and_logits(images[:7], batch_size=3)
    assert activations.shape == (7, 128) and activations.dtype == np.float64
    assert logits.shape == (7, _NUM_CLASSES) and logits.dtype == np.float64
    np.testing.assert_allclose(logits, extractor.classifier(images[:7]).numpy(), rtol=1e-5,
                               atol=1e-5)


def test_cache_second_call_loads_from_disk_without_retraining(extractor, data, cache_dir,
                                                              monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("train_classifier was called although a cache entry exists")

    monkeypatch.setattr(features, "train_classifier", fail)
    images, labels = data
    loaded = features.get_or_train_feature_extractor(images, labels, _NUM_CLASSES, cache_dir,
                                                     **_train_kwargs())
    assert loaded is not extractor
    assert loaded.accuracy == extractor.accuracy
    for got, expected in zip(loaded.activations_and_logits(images[:20]),
                             extractor.activations_and_logits(images[:20])):
        np.testing.assert_array_equal(got, expected)
    entry, = os.listdir(cache_dir)
    assert sorted(os.listdir(os.path.join(cache_dir, entry))) == ["classifier.keras", "info.json"]


@pytest.mark.parametrize("damage", ["hdf5_lambda", "random_bytes", "info_garbage",
                                    "info_without_accuracy"])
def test_damaged_or_hostile_cache_entry_is_refused_and_its_code_never_runs(
        extractor, data, cache_dir, tmp_path, damage):
    import shutil

    from tfgan_opt.testing import malicious_keras_file
    del extractor  # the entry exists
    copy = str(tmp_path / "cache")
    shutil.copytree(cache_dir, copy)
    entry = os.path.join(copy, os.listdir(copy)[0])
    marker = str(tmp_path / "payload_ran")
    classifier, info = os.path.join(entry, "classifier.keras"), os.path.join(entry, "info.json")
    if damage == "hdf5_lambda":
        malicious_keras_file(classifier, marker, input_dim=3)
    elif damage == "random_bytes":
        with open(classifier, "wb") as f:
            f.write(os.urandom(256))
    else:
        with open(info, "w", encoding="utf-8") as f:
            f.write("{not json" if damage == "info_garbage" else '{"num_samples": 3}')
    images, labels = data
    with pytest.raises(ModelFileError, match=rf"cached feature classifier.*; delete {entry} to "
                                             r"retrain it"):
        features.get_or_train_feature_extractor(images, labels, _NUM_CLASSES, copy,
                                                **_train_kwargs())
    assert not os.path.exists(marker)


def test_fingerprint_changes_with_labels_images_and_recipe(data):
    images, labels = data
    base = features.dataset_fingerprint(images, labels, _NUM_CLASSES, epochs=3)
    assert features.dataset_fingerprint(images, labels[::-1], _NUM_CLASSES, epochs=3) != base
    assert features.dataset_fingerprint(images + 0.01, labels, _NUM_CLASSES, epochs=3) != base
    assert features.dataset_fingerprint(images, labels, _NUM_CLASSES, epochs=4) != base
    assert features.dataset_fingerprint(images.copy(), labels.copy(), _NUM_CLASSES,
                                        epochs=3) == base


def test_missing_labels_raise_error_that_explains_the_need(data, tmp_path):
    with pytest.raises(DataError, match="trained on class labels"):
        features.get_or_train_feature_extractor(data[0], None, _NUM_CLASSES, str(tmp_path))


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, _SIDE, _SIDE, 1), np.uint8), "x / 127.5 - 1"),
    (np.full((2, _SIDE, _SIDE, 1), 2.0, np.float32), r"\[-1, 1\]"),
    (np.zeros((2, 8, 8, 1), np.float32), "takes"),
])
def test_extractor_rejects_images_it_cannot_score(extractor, images, message):
    with pytest.raises(DataError, match=message):
        extractor.activations_and_logits(images)


@pytest.mark.parametrize("shape", [(8, 8, 3), (28, 28, 1), (64, 64, 1)])
def test_classifier_builds_for_supported_shapes_with_small_flatten(shape):
    classifier = features.build_classifier(shape, 10)
    assert classifier.output_shape == (None, 10)
    flatten_side = [layer for layer in classifier.layers
                    if isinstance(layer, keras.layers.Flatten)][0].input_shape[1]
    assert flatten_side <= 7


@pytest.mark.parametrize("shape", [(7, 7, 1), (16, 12, 1), (16, 16, 2)])
def test_classifier_rejects_unsupported_shapes(shape):
    with pytest.raises(DataError, match="square images"):
        features.build_classifier(shape, 10)


def test_compute_metrics_of_set_against_itself_reports_no_difference(extractor, data):
    images, labels = data
    results = features.compute_metrics(extractor, images, images, labels, _NUM_CLASSES,
                                       kid_subsets=2)
    np.testing.assert_allclose(results["frechet_distance"], 0.0, atol=1e-6)
    assert (results["precision"], results["recall"]) == (1.0, 1.0)
    np.testing.assert_allclose(results["kl_to_real"], 0.0, atol=0.05)
    assert results["classes_covered"] == _NUM_CLASSES
    assert len(results["class_histogram"]) == _NUM_CLASSES
    assert results["num_real"] == results["num_fake"] == 200
    assert 1.0 <= results["classifier_score"] <= _NUM_CLASSES


def test_compute_metrics_scores_a_collapsed_generator_worse(extractor, data):
    images, labels = data
    collapsed = np.repeat(images[labels == 0][:10], 5, axis=0)
    results = features.compute_metrics(extractor, images, collapsed, labels, kid_subsets=2)
    same = features.compute_metrics(extractor, images, images[::-1], labels, kid_subsets=2)
    assert results["frechet_distance"] > same["frechet_distance"] + 1.0
    assert results["classes_covered_10pct"] < _NUM_CLASSES
    assert results["recall"] < 0.5
    assert results["kid_mean"] > same["kid_mean"]


def test_compute_metrics_rejects_labels_that_do_not_match_the_real_images(extractor, data):
    images, labels = data
    with pytest.raises(DataError, match="199 real labels for 200 real images"):
        features.compute_metrics(extractor, images, images, labels[:-1])


def test_real_noise_floor_compares_two_disjoint_halves(extractor, data):
    images, labels = data
    floor = features.real_noise_floor(extractor, images, labels, _NUM_CLASSES, kid_subsets=2)
    assert floor["num_real"] == floor["num_fake"] == 100
    assert floor["frechet_distance"] > 0.0  # Disjoint halves, so not the identical-set zero.
    assert floor["classes_covered"] == _NUM_CLASSES


# Builds InceptionV3 twice: 7 s on 2 idle cores, 25-40 s when other jobs share them.
def test_inception_extractor_loads_local_weights_and_returns_pool_activations(tmp_path):
    keras.utils.set_random_seed(1)
    source = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                            input_shape=(299, 299, 3))
    weights_path = str(tmp_path / "inception_notop.h5")
    source.save_weights(weights_path)
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 16, 16, 1)).astype(np.float32)

    activations, logits = inception.InceptionFeatureExtractor(weights_path).activations_and_logits(
        images)

    assert activations.shape == (2, 2048) and logits is None
    expected = source(tf.image.resize(np.repeat(images, 3, axis=-1), (299, 299)), training=False)
    np.testing.assert_allclose(activations, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_inception_extractor_rejects_missing_and_invalid_weights_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        inception.InceptionFeatureExtractor(str(tmp_path / "absent.h5"))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(ModelFileError, match="is not an HDF5 weights file"):
        inception.InceptionFeatureExtractor(str(garbage))


def test_inception_extractor_rejects_weights_of_another_model(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    weights_path = str(tmp_path / "dense.h5")
    other.save_weights(weights_path)
    with pytest.raises(ModelFileError, match="is not an InceptionV3"):
        inception.InceptionFeatureExtractor(weights_path)
