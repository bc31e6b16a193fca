"""Evaluation of a generator of any kind (Keras, SavedModel, TFLite, run directory) against real data.

Every kind is loaded as a *generator function*: a callable z float32 [N, latent_dim] -> images
float32 [N, H, W, C] in [-1, 1] with ``latent_dim`` and ``image_shape`` attributes, so the same
metrics code measures the Keras model and each exported file.
"""

import os

import numpy as np
import tensorflow as tf

from tfgan_opt import models
from tfgan_opt.evaluation import conditional, feature_spaces, features
from tfgan_opt.core.artifacts import atomic_write_json
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.naming import class_cycle, first_line, sample_latents, slug
from tfgan_opt.core.images import save_image_grid
from tfgan_opt.evaluation.markdown import quality_table, write_report
from tfgan_opt.export.tflite import INPUT_KEY, LEGACY_OUTPUT_KEY, OUTPUT_KEY, SIGNATURE_KEY
from tfgan_opt.models.base import slice_inputs

SAMPLE_GRID = 64


class KerasGeneratorFunction:
    """A `Generator` as a numpy function (inference mode, batched); a conditional one takes
    ``(z, labels)``."""

    def __init__(self, generator, batch_size=500):
        self.generator = generator
        self.latent_dim = generator.latent_dim
        self.image_shape = generator.image_shape
        self.num_classes = generator.num_classes
        self.conditional = generator.conditional
        self._batch_size = batch_size
        self._call = tf.function(lambda z: generator(z, training=False), reduce_retracing=True)

    def __call__(self, z):
        if isinstance(z, tuple):
            z = (np.asarray(z[0], np.float32), np.asarray(z[1], np.int32))
        else:
            z = np.asarray(z, np.float32)
        num = len(z[0]) if isinstance(z, tuple) else len(z)
        return np.concatenate([self._call(slice_inputs(z, i, i + self._batch_size)).numpy()
                               for i in range(0, num, self._batch_size)], axis=0)


class SavedModelGeneratorFunction:
    """A SavedModel exported by `tfgan_opt.export` (signature z -> {"image"}) as a numpy function.

    SavedModels exported before issue 12, whose output is named ``images``, load too.
    """

    def __init__(self, path, batch_size=500):
        self._signature = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
        z_spec = self._signature.structured_input_signature[1][INPUT_KEY]
        outputs = self._signature.structured_outputs
        self._output_key = OUTPUT_KEY if OUTPUT_KEY in outputs else LEGACY_OUTPUT_KEY
        images_spec = outputs[self._output_key]
        self.latent_dim = int(z_spec.shape[-1])
        self.image_shape = tuple(int(d) for d in images_spec.shape[1:])
        self._fixed_batch = z_spec.shape[0]
        self._batch_size = self._fixed_batch or batch_size

    def __call__(self, z):
        z = np.asarray(z, np.float32)
        out = []
        for i in range(0, len(z), self._batch_size):
            chunk = z[i:i + self._batch_size]
            padded = np.zeros((self._batch_size, self.latent_dim), np.float32)
            padded[:len(chunk)] = chunk
            feed = padded if self._fixed_batch else chunk
            images = self._signature(**{INPUT_KEY: tf.constant(feed)})[self._output_key]
            out.append(images.numpy()[:len(chunk)])
        return np.concatenate(out, axis=0)


def load_generator_function(path, trust_saved_model=False):
    """Loads ``path`` as a generator function.

    Args:
      path: a ``.tflite`` file, a SavedModel directory, a ``.keras`` generator, or a run directory
        (its trained ``train/generator.keras``).
      trust_saved_model: load a SavedModel. Its graph runs whatever ops it holds (file writes
        included) when called, so only a SavedModel from a trusted source may be loaded.

    Raises:
      ModelFileError: ``path`` is missing or none of those, a SavedModel without
        ``trust_saved_model``, or a Keras file that is HDF5 or holds code (`load_keras_model`).
    """
    if not os.path.exists(path):
        raise ModelFileError(f"generator {path} does not exist")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            if not trust_saved_model:
                raise ModelFileError(f"generator {path} is a SavedModel, whose graph can run any "
                                     "op (file writes included); pass --trust_saved_model if you "
                                     "trust its source")
            return _load_saved_model(path)
        trained = os.path.join(path, "train", "generator.keras")
        if os.path.exists(trained):
            return KerasGeneratorFunction(models.load_generator(trained))
        raise ModelFileError(f"{path} is neither a SavedModel nor a run directory with a trained "
                             "generator (train/generator.keras)")
    if path.endswith(".tflite"):
        from tfgan_opt.export.litert import load_tflite_generator  # LiteRT loads only when needed
        return load_tflite_generator(path)
    return KerasGeneratorFunction(models.load_generator(path))


def _load_saved_model(path):
    try:
        return SavedModelGeneratorFunction(path)
    except Exception as error:  # noqa: BLE001 - any failure means "not a tfgan_opt SavedModel"
        raise ModelFileError(f"{path} is not a SavedModel with a serving_default signature z -> "
                             f"images ({type(error).__name__}: {first_line(error)})") from error


def check_generator_function(name, function, image_shape, num=4, seed=0, num_classes=None):
    """Raises `ModelFileError` unless ``function`` maps ``num`` latents to finite images of
    ``image_shape`` in [-1, 1]: a cheap probe run before any output folder is touched. A
    conditional function is probed on every class (see `classes_of`)."""
    classes = classes_of(name, function, num_classes)
    num = max(num, classes)
    inputs = sample_latents(num, function.latent_dim, seed)
    if classes:
        inputs = (inputs, class_cycle(num, classes))
    try:
        images = np.asarray(function(inputs))
    except Exception as error:  # noqa: BLE001 - a file whose graph fails on its own input
        raise ModelFileError(f"generator {name} fails on {num} latents of size "
                             f"{function.latent_dim} ({first_line(error)})") from error
    if images.shape != (num,) + tuple(image_shape):
        raise ModelFileError(f"generator {name} makes images of shape {images.shape[1:]}, but the "
                             f"data has {tuple(image_shape)}")
    check_finite_images(name, images)


def classes_of(name, function, num_classes=None):
    """The classes a generator function is asked for: 0 if it takes no label; else its own count
    (a Keras generator knows it), or ``num_classes`` (the data's, for a ``.tflite`` file).

    Raises:
      ModelFileError: the function takes a label but neither it nor the data tells the classes.
    """
    if not getattr(function, "conditional", False):
        return 0
    classes = getattr(function, "num_classes", 0) or num_classes
    if not classes:
        raise ModelFileError(f"generator {name} takes a class label, but the data has no labels "
                             "to tell its classes; evaluate it on its labelled training data")
    return int(classes)


def check_finite_images(name, images):
    """Raises `ModelFileError` if a generator's ``images`` hold NaN or Inf: that is a broken
    generator, not a sample whose score means anything."""
    bad = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
    if bad:
        raise ModelFileError(f"generator {name} outputs NaN or Inf ({bad} of {np.size(images)} "
                             "values); it cannot be scored")


def generate(generator_function, num, seed=0, batch_size=1000, num_classes=None):
    """``num`` images from seeded latents: float32 [num, H, W, C] (a conditional generator: every
    class in turn, its classes as `classes_of` tells them)."""
    classes = classes_of("", generator_function, num_classes)
    if classes:
        return conditional.generate_for_classes(generator_function, num, classes, seed,
                                                batch_size)[0]
    z = sample_latents(num, generator_function.latent_dim, seed)
    return np.concatenate([generator_function(z[i:i + batch_size])
                           for i in range(0, num, batch_size)], axis=0)


def num_classes_of(labels):
    return None if labels is None else int(np.max(labels)) + 1


def domain_extractor(real_images, real_labels, cache_dir, space=None, inception_weights=None):
    """The dataset's domain feature extractor (trained once, cached under ``cache_dir``).

    ``space``: a `feature_spaces.resolve_feature_space` result; None picks the classifier when
    there are labels, else the label-free encoder.
    """
    if space is None:
        space = feature_spaces.CLASSIFIER if real_labels is not None else feature_spaces.LABEL_FREE
    return feature_spaces.make_extractor(space, real_images, real_labels, cache_dir,
                                         inception_weights)


def evaluate_images(extractor, real_images, real_labels, fake_images, seed=0):
    """All metrics of ``fake_images`` against the real set (see `features.compute_metrics`)."""
    return features.compute_metrics(extractor, real_images, fake_images, real_labels,
                                    num_classes_of(real_labels), seed=seed)


def noise_floor(extractor, real_images, real_labels, seed=0):
    """The real-vs-real metrics (two disjoint halves): what "no difference" looks like."""
    return features.real_noise_floor(extractor, real_images, real_labels,
                                     num_classes_of(real_labels), seed=seed)


def untrained_like(generator, seed=0):
    """A generator of the same architecture with fresh random weights: the 'no training' baseline."""
    keras.utils.set_random_seed(seed)
    return generator.with_network(keras.models.clone_model(generator.network))


def write_evaluation(out_dir, data_description, extractor, floor, results, num_real):
    """Writes ``metrics.json``, sample grids and ``report.md`` for evaluated generators.

    Args:
      out_dir: output folder.
      data_description: one line describing the real data (`data.describe_source`).
      extractor: the feature extractor used (`feature_spaces.describe` names it).
      floor: real-vs-real metrics.
      results: list of (name, metrics dict, images float32 [N, H, W, C]).
      num_real: number of real images.

    Returns:
      Path of ``report.md``.
    """
    grids = []
    for name, _, images in results:
        path = os.path.join(out_dir, f"samples_{slug(name)}.png")
        save_image_grid(path, images[:SAMPLE_GRID], scale=3)
        grids.append((name, path))
    accuracy = getattr(extractor, "accuracy", None)
    payload = {"data": data_description, "num_real": num_real, "classifier_accuracy": accuracy,
               "feature_space": feature_spaces.space_of(extractor),
               "real_vs_real": floor, "generators": {name: m for name, m, _ in results}}
    atomic_write_json(os.path.join(out_dir, "metrics.json"), payload)
    num_fake = ", ".join(f"{name}: {m.get('num_fake')}" for name, m, _ in results)
    about = (f"Real data: {data_description}. {num_real} real images; generated samples per "
             f"model: {num_fake}. Features: {feature_spaces.describe(extractor)}. The real-vs-real "
             "row compares two disjoint halves of the real set: differences smaller than its "
             "distance from 0 are noise. n/a: the metric needs class labels or logits this "
             "feature space does not have.")
    rows = [("real vs real (floor)", floor)] + [(name, m) for name, m, _ in results]
    return write_report(os.path.join(out_dir, "report.md"), "Sample quality", [
        ("How to read this", about), ("Metrics", quality_table(rows)), ("Samples", grids)])

