"""The domain feature extractor, and the quality metrics of generated images in its feature space.

InceptionV3 weights cannot be downloaded on the machines this library targets, so the default
extractor is a small CNN classifier trained on the user's labelled real data: TF-GAN's "Frechet
classifier distance" / "MNIST score" idea. Its 128-d embedding plays the role of Inception's pool
features and its logits give the classifier score and mode coverage. Numbers from it are comparable
only between runs that use the same classifier (the cache below keys it by dataset and recipe).
`tfgan_opt.evaluation.inception.InceptionFeatureExtractor` gives standard FID features when a local
weights file is available.
"""

import hashlib
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.core import artifacts, keras_files
from tfgan_opt.evaluation import metrics
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import DataError, ModelFileError

# Bump whenever build_classifier or the training procedure changes, so cached classifiers retrain.
CLASSIFIER_RECIPE_VERSION = 1
EMBEDDING_LAYER_NAME = "embedding"
_CLASSIFIER_FILE = "classifier.keras"
_INFO_FILE = "info.json"
_MIN_IMAGE_SIDE = 8
# Conv blocks are added until the feature map is at most this wide, keeping the Dense layer small.
_MAX_FLATTEN_SIDE = 7
# Images may carry rounding a little outside [-1, 1]; anything beyond is a scaling mistake.
_RANGE_TOLERANCE = 1e-3
# Metrics that need the classifier's logits; the coverage ones also need the real labels.
LOGIT_METRICS = ("classifier_score",)
COVERAGE_METRICS = ("classes_covered", "classes_covered_10pct", "class_histogram", "kl_to_real")


def check_images(images, name="images"):
    """Returns ``images`` as float32 NHWC in [-1, 1], or raises DataError."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"{name} must be floats in [-1, 1], got dtype {images.dtype}; scale uint8 "
                        "pixels with x / 127.5 - 1")
    if images.ndim != 4 or images.shape[0] < 1:
        raise DataError(f"{name} must be a non-empty NHWC batch, got shape {images.shape}")
    low, high = float(images.min()), float(images.max())
    if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise DataError(f"{name} must lie in [-1, 1], got range [{low:.3g}, {high:.3g}]")
    return images.astype(np.float32, copy=False)


def _check_labels(labels, num_images, num_classes):
    """Returns ``labels`` as int64 [N], or raises DataError."""
    if labels is None:
        raise DataError("the feature classifier is trained on class labels but labels is None; "
                        "pass the real images' labels, or use the label-free encoder "
                        "(features=label_free)")
    labels = np.asarray(labels)
    if labels.shape != (num_images,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be {num_images} integers, got dtype {labels.dtype} and shape "
                        f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"labels must lie in [0, {num_classes}), got range "
                        f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def conv_trunk(image_shape, filters, what):
    """(inputs, feature map) of the domain networks' conv stack: a 3x3 conv + max-pool block per
    entry of ``filters``, then ``filters[-1]`` blocks until the map is at most 7 wide. Raises
    `DataError` (naming ``what``) unless the images are square, >= 8 wide, 1 or 3 channels."""
    side, width, channels = image_shape
    if side != width or side < _MIN_IMAGE_SIDE or channels not in (1, 3):
        raise DataError(f"the {what} needs square images of side >= {_MIN_IMAGE_SIDE} with 1 "
                        f"or 3 channels, got shape {tuple(image_shape)}")
    inputs = keras.Input(shape=tuple(image_shape), dtype="float32")
    x = inputs
    for count in filters:
        x = keras.layers.Conv2D(count, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    while x.shape[1] > _MAX_FLATTEN_SIDE:
        x = keras.layers.Conv2D(filters[-1], 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    return inputs, x


def build_classifier(image_shape, num_classes):
    """Builds the small CNN whose ``embedding`` layer and logits serve as features.

    Args:
      image_shape: (side, side, channels) with side >= 8 and channels 1 or 3.
      num_classes: number of classes, >= 2.

    Returns:
      An uncompiled Functional ``keras.Model`` from float32 [N, side, side, channels] in [-1, 1]
      to float32 [N, num_classes] logits, with a 128-unit ReLU layer named ``embedding``.

    Raises:
      DataError: the image shape is not supported.
    """
    inputs, x = conv_trunk(image_shape, (32, 64), "classifier")
    x = keras.layers.Dropout(0.25)(keras.layers.Flatten()(x))
    x = keras.layers.Dense(128, activation="relu", name=EMBEDDING_LAYER_NAME)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(keras.layers.Dropout(0.5)(x))
    return keras.Model(inputs, logits, name="feature_classifier")


def _split_held_out(num_images, validation_fraction, seed):
    """Seeded (train_rows, held_out_rows) index arrays."""
    if not 0.0 < validation_fraction < 1.0:
        raise DataError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(num_images)
    num_held_out = max(1, int(round(num_images * validation_fraction)))
    if num_held_out >= num_images:
        raise DataError(f"{num_images} images are too few to hold out {validation_fraction:.0%}")
    return order[num_held_out:], order[:num_held_out]


def train_classifier(images, labels, num_classes, *, epochs=6, batch_size=32, seed=0,
                     validation_fraction=0.1):
    """Trains the feature classifier on labelled real images and measures it on a held-out split.

    Sets the global Python, NumPy and TensorFlow seeds (``keras.utils.set_random_seed``) so the
    classifier, and therefore every metric computed with it, is reproducible.

    Args:
      images: float [N, side, side, C] in [-1, 1], side >= 8, C in {1, 3}.
      labels: int [N] class labels in [0, num_classes).
      num_classes: number of classes, >= 2.
      epochs: passes over the training split.
      batch_size: training batch size.
      seed: seed of the held-out split, the weight initialization and the shuffling.
      validation_fraction: fraction of the images held out (never trained on), in (0, 1).

    Returns:
      (classifier, held_out_accuracy): the trained ``keras.Model`` (see `build_classifier`) and
      its accuracy on the held-out split, a float in [0, 1].

    Raises:
      DataError: bad images, labels, shape or validation_fraction.
    """
    images = check_images(images)
    labels = _check_labels(labels, images.shape[0], num_classes)
    train_rows, held_out_rows = _split_held_out(images.shape[0], validation_fraction, seed)
    keras.utils.set_random_seed(seed)
    classifier = build_classifier(images.shape[1:], num_classes)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.monotonic()
    classifier.fit(images[train_rows], labels[train_rows], batch_size=batch_size, epochs=epochs,
                   shuffle=True, verbose=0)
    logits = classifier.predict(images[held_out_rows], batch_size=500, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels[held_out_rows]))
    logging.info("Feature classifier: %d epochs on %d images in %.1f s, held-out accuracy %.4f",
                 epochs, train_rows.size, time.monotonic() - start, accuracy)
    return classifier, accuracy


def run_batched(function, images, batch_size):
    """Applies a tf.function to ``images`` in batches; returns its outputs joined, as float64."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outputs = [function(tf.constant(images[start:start + batch_size]))
               for start in range(0, images.shape[0], batch_size)]
    return tuple(np.concatenate([np.asarray(o[i]) for o in outputs]).astype(np.float64)
                 for i in range(len(outputs[0])))


class FeatureExtractor:
    """Embeddings and logits of a trained feature classifier (see `train_classifier`).

    Attributes:
      classifier: the wrapped ``keras.Model``.
      accuracy: its held-out accuracy in [0, 1], or None if unknown.
      image_shape: (side, side, channels) it accepts.
      num_classes: width of its logits.
      embedding_dim: width of its ``embedding`` layer.
    """

    def __init__(self, classifier, accuracy=None):
        try:
            embedding = classifier.get_layer(EMBEDDING_LAYER_NAME).output
        except ValueError as error:
            raise ModelFileError(f"the classifier has no layer named '{EMBEDDING_LAYER_NAME}'; "
                                 "build it with build_classifier") from error
        self.classifier = classifier
        self.accuracy = accuracy
        self.image_shape = tuple(classifier.input_shape[1:])
        self.num_classes = int(classifier.output_shape[-1])
        self.embedding_dim = int(embedding.shape[-1])
        self._embedding_and_logits = keras.Model(classifier.input, [embedding, classifier.output])
        # One fixed signature: batches of any size, including the last short one, reuse one graph.
        self._features = tf.function(
            self._forward, input_signature=[tf.TensorSpec((None,) + self.image_shape, tf.float32)])

    def _forward(self, images):
        return self._embedding_and_logits(images, training=False)

    @classmethod
    def from_classifier(cls, model, accuracy):
        """Wraps a classifier built by `build_classifier` (trained, or loaded from a file)."""
        return cls(model, accuracy)

    def activations_and_logits(self, images, batch_size=500):
        """Runs the classifier over ``images``.

        Args:
          images: float [N, side, side, C] in [-1, 1], matching ``image_shape``.
          batch_size: images per forward pass.

        Returns:
          (embeddings, logits): float64 arrays [N, embedding_dim] and [N, num_classes].

        Raises:
          DataError: the images have the wrong shape, dtype or range.
        """
        images = check_images(images)
        if images.shape[1:] != self.image_shape:
            raise DataError(f"images have shape {images.shape[1:]} but the feature classifier "
                            f"takes {self.image_shape}")
        return run_batched(self._features, images, batch_size)


def dataset_fingerprint(images, labels, num_classes, **recipe):
    """sha256 hex digest of a labelled dataset, the classifier recipe version and ``recipe``."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256()
    digest.update(repr((CLASSIFIER_RECIPE_VERSION, num_classes, images.shape,
                        sorted(recipe.items()))).encode("utf-8"))
    digest.update(images.tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def get_or_train_feature_extractor(images, labels, num_classes, cache_dir, *, epochs=6, seed=0,
                                   validation_fraction=0.1):
    """Loads the feature classifier cached for this dataset, or trains and caches it.

    The cache entry ``<cache_dir>/<fingerprint>/`` holds ``classifier.keras`` (tf_keras format) and
    ``info.json`` (held-out accuracy, sample count, classes, recipe), written atomically. The
    fingerprint covers the image bytes and shape, the labels, the recipe version and the training
    arguments, so a changed dataset or recipe trains a new classifier instead of reusing a stale
    one.

    Args:
      images, labels, num_classes, epochs, seed, validation_fraction: see `train_classifier`.
      cache_dir: directory of cache entries; created if missing.

    Returns:
      A `FeatureExtractor`.

    Raises:
      DataError: labels is None, or bad images or labels.
      ModelFileError: a cache entry exists but cannot be loaded (delete it to retrain).
    """
    images = check_images(images)
    labels = _check_labels(labels, images.shape[0], num_classes)
    fingerprint = dataset_fingerprint(images, labels, num_classes, epochs=epochs, seed=seed,
                                      validation_fraction=validation_fraction)
    entry = os.path.join(cache_dir, fingerprint)
    if os.path.isfile(os.path.join(entry, _INFO_FILE)):
        return _load_cached_extractor(entry, images.shape[1:], num_classes)
    classifier, accuracy = train_classifier(images, labels, num_classes, epochs=epochs, seed=seed,
                                            validation_fraction=validation_fraction)
    with artifacts.atomic_directory(entry) as tmp_dir:
        classifier.save(os.path.join(tmp_dir, _CLASSIFIER_FILE))
        artifacts.atomic_write_json(os.path.join(tmp_dir, _INFO_FILE), {
            "accuracy": accuracy, "num_samples": images.shape[0], "num_classes": num_classes,
            "image_shape": images.shape[1:], "recipe_version": CLASSIFIER_RECIPE_VERSION,
            "epochs": epochs, "seed": seed, "validation_fraction": validation_fraction})
    logging.info("Cached feature classifier in %s", entry)
    return FeatureExtractor.from_classifier(classifier, accuracy)


def read_cache_entry(entry, model_file, info_key, what):
    """(model, float info[info_key]) of a cache entry; damaged: a one-line ModelFileError."""
    remedy = f"delete {entry} to retrain it"
    try:
        value = float(artifacts.read_json(os.path.join(entry, _INFO_FILE))[info_key])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"cannot read {what} info in {entry} "
                             f"({type(error).__name__}); {remedy}") from error
    try:
        return keras_files.load_keras_model(os.path.join(entry, model_file), what), value
    except ModelFileError as error:
        raise ModelFileError(f"{error}; {remedy}") from error


def _load_cached_extractor(entry, image_shape, num_classes):
    """Loads a cache entry written by `get_or_train_feature_extractor` (checked like any model
    file: a cache folder may come from elsewhere, see `keras_files.load_keras_model`)."""
    path = os.path.join(entry, _CLASSIFIER_FILE)
    classifier, accuracy = read_cache_entry(entry, _CLASSIFIER_FILE, "accuracy",
                                            "cached feature classifier")
    if (tuple(classifier.input_shape[1:]) != tuple(image_shape)
            or tuple(classifier.output_shape[1:]) != (num_classes,)):
        raise ModelFileError(f"cached feature classifier {path} maps {classifier.input_shape} to "
                             f"{classifier.output_shape}, not images {tuple(image_shape)} to "
                             f"{num_classes} classes; delete {entry} to retrain it")
    logging.info("Loaded cached feature classifier %s (held-out accuracy %.4f)", path, accuracy)
    return FeatureExtractor.from_classifier(classifier, accuracy)


def metrics_from_features(real_activations, fake_activations, fake_logits, real_labels,
                           num_classes, kid_subsets, seed):
    """Every metric of `tfgan_opt.metrics` that the given features allow, as a flat dict."""
    kid_mean, kid_std = metrics.kernel_inception_distance_from_activations(
        real_activations, fake_activations, num_subsets=kid_subsets, seed=seed)
    precision, recall = metrics.precision_recall_from_activations(real_activations,
                                                                  fake_activations)
    results = {
        "num_real": int(real_activations.shape[0]),
        "num_fake": int(fake_activations.shape[0]),
        "frechet_distance": metrics.frechet_distance_from_activations(real_activations,
                                                                      fake_activations),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
    }
    if fake_logits is not None:
        results["classifier_score"] = metrics.classifier_score_from_logits(fake_logits)
        if real_labels is not None:
            results.update(metrics.mode_coverage_from_logits(
                fake_logits, real_labels, num_classes or fake_logits.shape[1]))
    # Label metrics a feature space cannot give are recorded as not applicable, not left out.
    results["not_applicable"] = [key for key in LOGIT_METRICS + COVERAGE_METRICS
                                 if key not in results]
    results.update({key: None for key in results["not_applicable"]})
    return results


def check_label_count(labels, num_images):
    if labels is not None and len(labels) != num_images:
        raise DataError(f"got {len(labels)} real labels for {num_images} real images")


def compute_metrics(extractor, real_images, fake_images, real_labels=None, num_classes=None, *,
                    kid_subsets=10, seed=0):
    """Scores generated images against real ones with every metric the extractor supports.

    Args:
      extractor: a `FeatureExtractor` or `InceptionFeatureExtractor`.
      real_images: float [N_r, H, W, C] in [-1, 1].
      fake_images: float [N_f, H, W, C] in [-1, 1], N_r and N_f > 3.
      real_labels: optional int [N_r] labels of the real images; with the extractor's logits they
        give the mode-coverage fields.
      num_classes: number of classes; defaults to the extractor's logit width.
      kid_subsets: subsets the KID estimate averages over.
      seed: seed of the KID subsets.

    Returns:
      A dict of Python numbers: ``num_real``, ``num_fake``, ``frechet_distance``, ``kid_mean``,
      ``kid_std``, ``precision``, ``recall``; with logits also ``classifier_score``; with logits
      and real_labels also ``classes_covered``, ``classes_covered_10pct``, ``class_histogram``
      and ``kl_to_real`` (see `tfgan_opt.metrics`). Those the extractor and labels cannot give
      are None and listed in ``not_applicable``.

    Raises:
      DataError: bad images, or real_labels of another length than real_images.
      ValueError: too few images or labels that do not match the logits.
    """
    start = time.monotonic()
    check_label_count(real_labels, len(real_images))
    real_activations, _ = extractor.activations_and_logits(real_images)
    fake_activations, fake_logits = extractor.activations_and_logits(fake_images)
    results = metrics_from_features(real_activations, fake_activations, fake_logits, real_labels,
                                     num_classes, kid_subsets, seed)
    logging.debug("Computed metrics of %d fake vs %d real images in %.1f s", results["num_fake"],
                 results["num_real"], time.monotonic() - start)
    return results


def real_noise_floor(extractor, real_images, real_labels=None, num_classes=None, seed=0, *,
                     kid_subsets=10):
    """The metrics of one half of the real images against the other: what "no difference" scores.

    The real set is split into two disjoint, seeded halves of N_r // 2 images; the first plays
    "real", the second "generated". Frechet distance is biased upwards at small N, so a floor
    measured on N_r / 2 images slightly overstates the floor of an N_r-sized comparison.

    Args:
      extractor, real_images, real_labels, num_classes, kid_subsets: see `compute_metrics`.
      seed: seed of the split and of the KID subsets.

    Returns:
      The dict of `compute_metrics` for the two halves.
    """
    real_images = check_images(real_images, "real_images")
    check_label_count(real_labels, real_images.shape[0])
    order = np.random.default_rng(seed).permutation(real_images.shape[0])
    half = real_images.shape[0] // 2
    first, second = order[:half], order[half:2 * half]
    activations, logits = extractor.activations_and_logits(real_images)
    return metrics_from_features(
        activations[first], activations[second], None if logits is None else logits[second],
        None if real_labels is None else np.asarray(real_labels)[first], num_classes, kid_subsets,
        seed)
