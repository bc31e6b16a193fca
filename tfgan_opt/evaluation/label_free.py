"""A label-free domain feature extractor: a small contrastive encoder with learned prototypes.

Trained on the real images alone (no labels, no download), it plays the role the labelled
classifier of `tfgan_opt.evaluation.features` plays when the source has labels: an image's
projection and its soft assignment to 32 learned prototypes are the feature space of FD, KID and
precision/recall. Two objectives train it together:
- SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
  Representations"): two random augmentations of one image map close together and away from every
  other image of the batch (the NT-Xent loss, on a projection head);
- SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
  Assignments"): each view predicts the other view's assignment to the prototypes, the assignments
  computed by Sinkhorn-Knopp so that the batch spreads evenly over them.
Contrastive features alone describe each image's strokes and texture more than what it depicts: a
set of real digits of five classes out of ten scored better than every trained generator. The
prototypes are clusters of the data, so the assignment to them describes which kind of image it
is, and a generator that drops modes moves its mean (measured on MNIST: BUILD_NOTES.md, issue 17).
The augmentations are the ones that keep an image's meaning in any domain: a random crop resized
back (translation and zoom), brightness and contrast jitter, and Gaussian noise. No flips: a
mirrored digit is another symbol.

Numbers from it are comparable only between runs that use the same encoder (the cache keys it by
dataset and recipe, like the classifier).
"""

import hashlib
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.core import artifacts
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import DataError
from tfgan_opt.evaluation.features import (EMBEDDING_LAYER_NAME, check_images, conv_trunk,
                                          read_cache_entry, run_batched)

# Bump whenever build_encoder, the augmentations or the training procedure change.
# 1: SimCLR only, features = the 128-d embedding. 2: + SwAV prototypes, 400 steps, features =
# projection + prototype assignment.
ENCODER_RECIPE_VERSION = 2
PROTOTYPE_LAYER_NAME = "prototypes"
_ENCODER_FILE = "encoder.keras"
_INFO_FILE = "info.json"
_PROJECTION_DIM = 64
# SwAV's values (Caron et al. 2020): prototype softmax temperature, Sinkhorn entropy and rounds.
_NUM_PROTOTYPES = 32
_PROTOTYPE_TEMPERATURE = 0.1
_SINKHORN_EPSILON = 0.05
_SINKHORN_ITERATIONS = 3
# Augmentation strengths: crops keep >= this fraction of the side; jitter ranges in [-1, 1] units.
_MIN_CROP_SIDE = 0.75
_BRIGHTNESS = 0.2
_CONTRAST = 0.3
_NOISE_STD = 0.05


def build_encoder(image_shape, embedding_dim=128, num_prototypes=_NUM_PROTOTYPES):
    """Builds the training network: conv blocks -> ReLU Dense ``embedding`` -> 2-layer projection
    head -> unit length -> bias-free Dense ``prototypes`` (cosine similarity to each prototype
    while its kernel's columns have unit length, which `train_encoder` maintains).

    Args:
      image_shape: (side, side, channels) with side >= 8 and channels 1 or 3.
      embedding_dim: width of the ``embedding`` layer.
      num_prototypes: number of prototypes (the width of the features).

    Returns:
      An uncompiled Functional ``keras.Model`` from float32 [N, side, side, channels] in [-1, 1] to
      [projections float32 [N, 64], similarities float32 [N, num_prototypes]].

    Raises:
      DataError: the image shape is not supported.
    """
    # Half the classifier's filters: contrastive training sees two views per image per step.
    inputs, x = conv_trunk(image_shape, (16, 32), "label-free encoder")
    x = keras.layers.Dense(embedding_dim, activation="relu",
                           name=EMBEDDING_LAYER_NAME)(keras.layers.Flatten()(x))
    x = keras.layers.Dense(embedding_dim, activation="relu", name="projection_hidden")(x)
    projections = keras.layers.Dense(_PROJECTION_DIM, name="projection")(x)
    similarities = keras.layers.Dense(num_prototypes, use_bias=False, name=PROTOTYPE_LAYER_NAME)(
        keras.layers.UnitNormalization()(projections))
    encoder = keras.Model(inputs, [projections, similarities], name="label_free_encoder")
    _normalize_prototypes(encoder)
    return encoder


def feature_model(encoder):
    """The features of a `build_encoder` network: its projection and its soft assignment to the
    prototypes, concatenated (float32 [N, 64 + num_prototypes]).

    The projection describes each image (what the contrastive loss tells apart), the assignment
    which cluster of the data it falls in (what SwAV's loss predicts); either alone ranked the MNIST
    spread of generators less like the classifier (BUILD_NOTES.md, issue 17).
    """
    logits = keras.layers.Rescaling(1.0 / _PROTOTYPE_TEMPERATURE)(
        encoder.get_layer(PROTOTYPE_LAYER_NAME).output)
    features = keras.layers.Concatenate()([encoder.get_layer("projection").output,
                                           keras.layers.Softmax()(logits)])
    return keras.Model(encoder.input, features, name="label_free_features")


def _normalize_prototypes(encoder):
    kernel = encoder.get_layer(PROTOTYPE_LAYER_NAME).kernel  # [projection dim, prototypes]
    kernel.assign(tf.math.l2_normalize(kernel, axis=0))


def augment(images, seed):
    """One random view per image: crop + resize, brightness/contrast jitter, Gaussian noise.

    Args:
      images: float32 [B, side, side, C] in [-1, 1].
      seed: int32 [2] stateless seed; the same seed gives the same views.

    Returns:
      float32 [B, side, side, C] in [-1, 1].
    """
    batch, side = tf.shape(images)[0], images.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    crop = tf.random.stateless_uniform([batch, 1], seeds[0], _MIN_CROP_SIDE, 1.0)
    offset = tf.random.stateless_uniform([batch, 2], seeds[1]) * (1.0 - crop)
    boxes = tf.concat([offset, offset + crop], axis=1)
    views = tf.image.crop_and_resize(images, boxes, tf.range(batch), (side, side))
    contrast = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], 1 - _CONTRAST, 1 + _CONTRAST)
    brightness = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], -_BRIGHTNESS, _BRIGHTNESS)
    mean = tf.reduce_mean(views, axis=[1, 2, 3], keepdims=True)
    views = (views - mean) * contrast + mean + brightness
    views += tf.random.stateless_normal(tf.shape(views), seeds[4], stddev=_NOISE_STD)
    return tf.clip_by_value(views, -1.0, 1.0)


def nt_xent_loss(first, second, temperature):
    """SimCLR's normalized-temperature cross entropy of two batches of projections.

    Args:
      first, second: float32 [B, D]; row i of both are views of the same image.
      temperature: softmax temperature, > 0.

    Returns:
      Scalar float32: the mean over the 2B views of -log softmax(similarity to its partner).
    """
    views = tf.math.l2_normalize(tf.concat([first, second], axis=0), axis=1)
    batch = tf.shape(first)[0]
    logits = tf.matmul(views, views, transpose_b=True) / temperature
    logits -= 1e9 * tf.eye(2 * batch)  # a view is not its own partner
    partners = tf.concat([tf.range(batch, 2 * batch), tf.range(batch)], axis=0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partners, logits))


def sinkhorn_codes(similarities, epsilon=_SINKHORN_EPSILON, iterations=_SINKHORN_ITERATIONS):
    """SwAV's soft assignment of a batch to prototypes, spread evenly (Sinkhorn-Knopp).

    Alternately rescales exp(similarities / epsilon) so that every prototype holds 1/K of the
    batch's mass and every image 1/B, ending on the images (Caron et al. 2020, Algorithm 1).

    Args:
      similarities: float32 [B, K] scores of B images against K prototypes.
      epsilon: entropy of the assignment (smaller: closer to hard assignment).
      iterations: rescaling rounds.

    Returns:
      float32 [B, K]: each row a distribution over the prototypes; no gradient flows through it.
    """
    scores = tf.stop_gradient(similarities) / epsilon
    codes = tf.exp(scores - tf.reduce_max(scores))
    codes /= tf.reduce_sum(codes)
    num_images = tf.cast(tf.shape(codes)[0], codes.dtype)
    num_prototypes = tf.cast(tf.shape(codes)[1], codes.dtype)
    for _ in range(iterations):
        codes /= tf.reduce_sum(codes, axis=0, keepdims=True) * num_prototypes
        codes /= tf.reduce_sum(codes, axis=1, keepdims=True) * num_images
    return codes * num_images


def swapped_prediction_loss(first, second, temperature=_PROTOTYPE_TEMPERATURE):
    """SwAV's loss: each view's prototype softmax predicts the other view's `sinkhorn_codes`.

    Args:
      first, second: float32 [B, K] prototype similarities; row i of both are views of one image.
      temperature: softmax temperature, > 0.

    Returns:
      Scalar float32: the mean cross entropy of the two predictions.
    """
    first_codes, second_codes = sinkhorn_codes(first), sinkhorn_codes(second)
    cross_entropy = (
        tf.reduce_sum(second_codes * tf.nn.log_softmax(first / temperature), axis=1)
        + tf.reduce_sum(first_codes * tf.nn.log_softmax(second / temperature), axis=1))
    return -0.5 * tf.reduce_mean(cross_entropy)


def view_matching_accuracy(model, images, seed=0):
    """How often an augmented view's nearest output (cosine) is the other view of its image.

    A sanity figure for an encoder on images it did not train on (chance: 1 / (2N - 1)).

    Args:
      model: maps float32 [N, side, side, C] to float32 [N, D] (one output).
      images: float32 [N, side, side, C] in [-1, 1].
      seed: seed of the views.
    """
    first = augment(tf.constant(images), tf.constant([seed, 1]))
    second = augment(tf.constant(images), tf.constant([seed, 2]))
    a = tf.math.l2_normalize(model(first, training=False), axis=1)
    b = tf.math.l2_normalize(model(second, training=False), axis=1)
    nearest = tf.argmax(tf.matmul(a, b, transpose_b=True), axis=1, output_type=tf.int32)
    return float(tf.reduce_mean(tf.cast(nearest == tf.range(tf.shape(a)[0]), tf.float32)))


def train_encoder(images, *, steps=400, batch_size=128, temperature=0.2, learning_rate=1e-3,
                  seed=0, held_out=256):
    """Trains the encoder on unlabelled real images: NT-Xent + SwAV's swapped prediction.

    Args:
      images: float [N, side, side, C] in [-1, 1], side >= 8, C in {1, 3}, N >= 16.
      steps: optimizer steps (the training cost is bounded by steps * batch_size, not by N).
      batch_size: images per step (2 * batch_size views); capped at the training images.
      temperature: NT-Xent temperature.
      learning_rate: Adam learning rate.
      seed: seed of the weights, the batches and the augmentations.
      held_out: images kept out of training to measure `view_matching_accuracy` (at most N / 5).

    Returns:
      (features, accuracy): the trained `feature_model` and the held-out view-matching accuracy
      of its projections, in [0, 1].

    Raises:
      DataError: bad images or too few of them.
    """
    images = check_images(images)
    if images.shape[0] < 16:
        raise DataError(f"the label-free encoder needs at least 16 real images, got "
                        f"{images.shape[0]}")
    order = np.random.default_rng(seed).permutation(images.shape[0])
    num_held_out = min(held_out, images.shape[0] // 5)
    held, train = images[order[:num_held_out]], images[order[num_held_out:]]
    batch_size = min(batch_size, train.shape[0])
    keras.utils.set_random_seed(seed)
    encoder = build_encoder(images.shape[1:])
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = encoder.trainable_variables

    @tf.function
    def step(batch, step_seed):
        with tf.GradientTape() as tape:
            first, first_similarities = encoder(augment(batch, step_seed), training=True)
            second, second_similarities = encoder(augment(batch, step_seed + 1), training=True)
            loss = (nt_xent_loss(first, second, temperature)
                    + swapped_prediction_loss(first_similarities, second_similarities))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        _normalize_prototypes(encoder)
        return loss

    rng = np.random.default_rng(seed + 1)
    start = time.monotonic()
    for index in range(steps):
        rows = rng.choice(train.shape[0], batch_size, replace=False)
        loss = step(tf.constant(train[rows]), tf.constant([seed, 2 * index + 3]))
    accuracy = view_matching_accuracy(keras.Model(encoder.input, encoder.outputs[0]), held, seed)
    logging.info("Label-free encoder: %d steps of %d images in %.1f s, last loss %.3f, held-out "
                 "view matching %.4f", steps, batch_size, time.monotonic() - start, float(loss),
                 accuracy)
    return feature_model(encoder), accuracy


class EncoderFeatureExtractor:
    """Features of a label-free encoder (see `train_encoder`); it has no logits.

    Attributes:
      encoder: the wrapped ``keras.Model`` (a `feature_model`: images -> features).
      accuracy: None (there are no labels to be accurate about).
      view_accuracy: held-out view-matching accuracy in [0, 1], or None if unknown.
      image_shape: (side, side, channels) it accepts.
      embedding_dim: width of its features.
      num_classes: None (no logits).
    """

    feature_space = "label_free"

    def __init__(self, encoder, view_accuracy=None):
        self.encoder = encoder
        self.accuracy = None
        self.view_accuracy = view_accuracy
        self.image_shape = tuple(encoder.input_shape[1:])
        self.embedding_dim = int(encoder.output_shape[-1])
        self.num_classes = None
        self._features = tf.function(
            self._forward, input_signature=[tf.TensorSpec((None,) + self.image_shape, tf.float32)])

    def _forward(self, images):
        return (self.encoder(images, training=False),)

    def describe(self):
        """One sentence naming the feature space, for reports."""
        matching = ("unknown" if self.view_accuracy is None
                    else f"{100 * self.view_accuracy:.1f}%")
        return ("the projection and prototype assignment of a contrastive + clustering (SimCLR + "
                f"SwAV-style) encoder trained on the real images without labels (held-out view matching "
                f"{matching})")

    def activations_and_logits(self, images, batch_size=500):
        """Returns (float64 [N, embedding_dim] features, None) for float [N, *image_shape]."""
        images = check_images(images)
        if images.shape[1:] != self.image_shape:
            raise DataError(f"images have shape {images.shape[1:]} but the label-free encoder "
                            f"takes {self.image_shape}")
        (activations,) = run_batched(self._features, images, batch_size)
        return activations, None


def encoder_fingerprint(images, **recipe):
    """sha256 hex digest of the images, the encoder recipe version and ``recipe``."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256()
    digest.update(repr(("label_free", ENCODER_RECIPE_VERSION, images.shape,
                        sorted(recipe.items()))).encode("utf-8"))
    digest.update(images.tobytes())
    return digest.hexdigest()


def get_or_train_label_free_extractor(images, cache_dir, *, steps=400, batch_size=128, seed=0):
    """Loads the encoder cached for these images, or trains and caches it.

    The entry ``<cache_dir>/<fingerprint>/`` holds ``encoder.keras`` and ``info.json``, written
    atomically; it shares the cache folder with the classifiers but never their fingerprints.

    Args:
      images, steps, batch_size, seed: see `train_encoder`.
      cache_dir: directory of cache entries; created if missing.

    Returns:
      An `EncoderFeatureExtractor`.

    Raises:
      DataError: bad images.
      ModelFileError: a cache entry exists but cannot be loaded (delete it to retrain).
    """
    images = check_images(images)
    fingerprint = encoder_fingerprint(images, steps=steps, batch_size=batch_size, seed=seed)
    entry = os.path.join(cache_dir, fingerprint)
    if os.path.isfile(os.path.join(entry, _INFO_FILE)):
        return _load_cached_encoder(entry)
    encoder, accuracy = train_encoder(images, steps=steps, batch_size=batch_size, seed=seed)
    with artifacts.atomic_directory(entry) as tmp_dir:
        encoder.save(os.path.join(tmp_dir, _ENCODER_FILE))
        artifacts.atomic_write_json(os.path.join(tmp_dir, _INFO_FILE), {
            "kind": "label_free", "view_accuracy": accuracy, "num_samples": images.shape[0],
            "image_shape": images.shape[1:], "recipe_version": ENCODER_RECIPE_VERSION,
            "steps": steps, "batch_size": batch_size, "seed": seed})
    logging.info("Cached label-free encoder in %s", entry)
    return EncoderFeatureExtractor(encoder, accuracy)


def _load_cached_encoder(entry):
    """Loads a cache entry, checked like any model file (a cache folder may come from elsewhere,
    see `keras_files.load_keras_model`)."""
    encoder, view_accuracy = read_cache_entry(entry, _ENCODER_FILE, "view_accuracy",
                                              "cached label-free encoder")
    logging.info("Loaded cached label-free encoder %s", os.path.join(entry, _ENCODER_FILE))
    return EncoderFeatureExtractor(encoder, view_accuracy)
