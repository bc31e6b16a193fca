"""Any image source -> numpy arrays or a batched ``tf.data.Dataset`` of images in [-1, 1].

Every source (`tfgan_opt.data.sources`) goes through the same ``tf.data`` map (channel conversion,
resize, scale to [-1, 1]), so `load_arrays` and `make_dataset` see identical pixels whatever the
source.
"""

from typing import NamedTuple, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from tfgan_opt.core.config import DataConfig
from tfgan_opt.core.errors import DataError
from tfgan_opt.data.sources import SOURCES, folder_class_names, parse_source


# ----------------------------------------------------------------------------- pipeline


class _Source(NamedTuple):
    dataset: tf.data.Dataset  # Unbatched (uint8 [h, w, c], int64 []); labels -1 when absent.
    count: Optional[int]  # None when tf.data cannot tell without reading everything.
    has_labels: bool


def _open_source(config: DataConfig) -> _Source:
    kind, location = parse_source(config.source)
    if kind == "tfds":
        dataset, has_labels = SOURCES["tfds"](config, location), True
        if config.limit:
            dataset = dataset.take(config.limit)
    else:
        images, labels = SOURCES[kind](config, location)
        # Slicing before from_tensor_slices keeps unused images out of the tensor copy.
        images = images[:config.limit]
        has_labels = labels is not None
        labels = labels[:config.limit] if has_labels else np.full(len(images), -1, np.int64)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    _check_element_spec(dataset, config.source)
    count = int(dataset.cardinality())
    if count == 0:
        raise DataError(f"source {config.source!r} holds no images; use another source")
    return _Source(dataset, count if count > 0 else None, has_labels)


def _check_element_spec(dataset: tf.data.Dataset, source: str):
    image_spec = dataset.element_spec[0]
    if image_spec.dtype != tf.uint8 or image_spec.shape.rank != 3:
        raise DataError(f"source {source!r} yields {image_spec.dtype.name} images of shape "
                        f"{image_spec.shape}; expected uint8 [height, width, channels]")
    if image_spec.shape[-1] not in (1, 3):
        raise DataError(f"source {source!r} has {image_spec.shape[-1]} channels per image; "
                        f"expected 1 or 3")


def _match_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)  # Repeats the one channel.
    return tf.image.rgb_to_grayscale(image)


def _to_model_input(image: tf.Tensor, label: tf.Tensor, image_size: int, channels: int):
    """uint8 [h, w, c] -> float32 [image_size, image_size, channels] in [-1, 1], int64 label."""
    image = _match_channels(tf.image.convert_image_dtype(image, tf.float32), channels)
    if tuple(image.shape[:2]) != (image_size, image_size):
        # Antialiased bilinear filters like area when shrinking and is plain bilinear when
        # enlarging, and it also handles TFDS images whose size is only known at run time.
        image = tf.image.resize(image, (image_size, image_size), method="bilinear",
                                antialias=True)
    image = tf.clip_by_value(image * 2.0 - 1.0, -1.0, 1.0)
    return tf.ensure_shape(image, (image_size, image_size, channels)), tf.cast(label, tf.int64)


def _preprocessed(source: _Source, config: DataConfig) -> tf.data.Dataset:
    return source.dataset.map(
        lambda image, label: _to_model_input(image, label, config.image_size, config.channels),
        num_parallel_calls=tf.data.AUTOTUNE)


def load_arrays(config: DataConfig, describe: bool = False):
    """All images of a source (after ``config.limit``) as numpy arrays, for evaluation.

    Args:
      config: the source and sizes.
      describe: also return the `describe_source` line (from the same opening of the source).

    Returns:
      ``(images, labels)``, or ``(images, labels, description)`` with ``describe``: images
      float32 [N, image_size, image_size, channels] in [-1, 1]; labels int64 [N], or None when
      the source has none.

    Raises:
      DataError: the source is missing, unreadable, corrupt or empty.
    """
    source = _open_source(config)
    images, labels = [], []
    for image_batch, label_batch in _preprocessed(source, config).batch(1024).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    images, labels = np.concatenate(images), np.concatenate(labels)
    logging.info("Loaded %d images from %s", len(images), config.source)
    arrays = (images, labels if source.has_labels else None)
    return arrays + (_describe(config, source, labels),) if describe else arrays


def make_dataset(config: DataConfig, repeat: bool = True) -> tf.data.Dataset:
    """A shuffled, batched training pipeline over a source.

    Preprocessed images are cached in memory (N x image_size^2 x channels x 4 bytes), then
    shuffled with ``config.seed`` (a fresh order each epoch, the same sequence every run).

    Args:
      config: the source, sizes, batch size, shuffle buffer, seed and limit.
      repeat: repeat forever (training) or stop after one epoch.

    Returns:
      A dataset of ``(images, labels)``: float32 [batch_size, image_size, image_size, channels]
      in [-1, 1] and int64 [batch_size] (-1 when the source has no labels). The last partial batch
      of each epoch is dropped so every batch has the static batch size.

    Raises:
      DataError: the source is missing, unreadable, corrupt, or smaller than one batch.
    """
    source = _open_source(config)
    if source.count is not None and source.count < config.batch_size:
        raise DataError(f"source {config.source!r} has {source.count} images, fewer than "
                        f"batch_size={config.batch_size}; lower batch_size or use more data")
    dataset = _preprocessed(source, config).cache()
    if config.shuffle_buffer:
        dataset = dataset.shuffle(min(config.shuffle_buffer, source.count or config.shuffle_buffer),
                                  seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size, drop_remainder=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def source_has_labels(config: DataConfig) -> bool:
    """Whether the source gives class labels (TFDS sources always do, read ``as_supervised``).

    Reads a local source's files, so a missing or bad source fails here with its usual error.
    """
    kind, location = parse_source(config.source)
    if kind == "tfds":
        return True
    return SOURCES[kind](config, location)[1] is not None


def source_labels(config: DataConfig) -> Optional[np.ndarray]:
    """Every label of a source (after ``config.limit``), int64 [N], or None if it has none."""
    source = _open_source(config)
    if not source.has_labels:
        return None
    return np.concatenate(list(
        source.dataset.map(lambda image, label: label).batch(4096).as_numpy_iterator()))


def class_names(config: DataConfig, num_classes: int):
    """Names of classes 0..num_classes-1: a folder's subfolders, a TFDS dataset's label names,
    else the numbers (IDX, NPZ and digits labels are the classes themselves)."""
    kind, location = parse_source(config.source)
    names = None
    if kind == "folder":
        names = folder_class_names(location)
    elif kind == "tfds":
        import tensorflow_datasets as tfds  # Lazy: slow to import and only this source needs it.
        try:
            names = tfds.builder(location, data_dir=config.data_dir).info.features["label"].names
        except (KeyError, AttributeError, tfds.core.DatasetNotFoundError):
            names = None
    if names is None or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return [str(name) for name in names]


def describe_source(config: DataConfig) -> str:
    """One line for reports, e.g. ``digits: 1797 images 8x8x1 resized to 28x28x1, 10 classes``.

    Reads every label of the source (after ``config.limit``) to count images and classes.
    """
    source = _open_source(config)
    labels = np.concatenate(list(
        source.dataset.map(lambda image, label: label).batch(4096).as_numpy_iterator()))
    return _describe(config, source, labels)


def _describe(config, source, labels):
    shape = source.dataset.element_spec[0].shape
    size = "x".join("?" if d is None else str(d) for d in shape)
    target = f"{config.image_size}x{config.image_size}x{config.channels}"
    text = f"{config.source}"
    if parse_source(config.source)[0] == "tfds":
        text += f" ({config.split})"
    text += f": {len(labels)} images {size}"
    if size != target:
        resized = tuple(shape[:2]) != (config.image_size, config.image_size)
        text += f" {'resized' if resized else 'converted'} to {target}"
    if source.has_labels:
        text += f", {len(np.unique(labels))} classes"
    return text
