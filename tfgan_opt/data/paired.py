"""Paired (degraded, clean) data for image-to-image models, from any image source.

`load_full_images` reads a source's images at their own sizes (a ``folder:`` of photos of mixed
sizes included) as RGB. `make_paired_dataset` draws random clean patches (with flips and
90-degree rotations) and degrades each batch with a named degradation
(`tfgan_opt.data.degrade`); `evaluation_pairs` degrades whole images once, reproducibly, for
evaluation. Everything is 3-channel, float32 in [-1, 1].
"""

from typing import List

import numpy as np
import tensorflow as tf

from tfgan_opt.core.config import DataConfig
from tfgan_opt.core.errors import DataError
from tfgan_opt.data import degrade as degradations
from tfgan_opt.data.sources import SOURCES, parse_source, read_folder_images


def load_full_images(source: str, limit=None, data_dir=None, split="train") -> List[np.ndarray]:
    """Every image of a source at its own size, as RGB.

    Args:
      source: a ``DataConfig.source`` string (``folder:<dir>``, ``npz:``, ``idx:``, ``digits``
        or a TFDS name).
      limit: keep the first ``limit`` images.
      data_dir, split: for TFDS sources.

    Returns:
      A list of uint8 [H, W, 3] arrays (grayscale sources repeated to RGB).

    Raises:
      DataError: the source is missing, unreadable or empty.
    """
    kind, location = parse_source(source)
    if kind == "folder":
        images = read_folder_images(location, 3)
    elif kind == "tfds":
        config = DataConfig(source=source, data_dir=data_dir, split=split, channels=3)
        dataset = SOURCES["tfds"](config, location)
        images = [image for image, _ in dataset.take(limit or -1).as_numpy_iterator()]
    else:
        images = list(SOURCES[kind](DataConfig(source=source, channels=3), location)[0])
    images = [np.repeat(i[..., None], 3, -1) if i.ndim == 2 else
              np.repeat(i, 3, -1) if i.shape[-1] == 1 else i for i in images[:limit]]
    if not images:
        raise DataError(f"source {source!r} holds no images; use another source")
    return images


def crop_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """The top-left part of an image whose sides are multiples of ``multiple`` (the "mod crop"
    of the super-resolution literature)."""
    height, width = image.shape[0] // multiple * multiple, image.shape[1] // multiple * multiple
    return image[:height, :width]


def to_float(images) -> np.ndarray:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def _random_patches(images, patch_size, seed):
    rng = np.random.default_rng(seed)
    sizes = np.array([i.shape[0] * i.shape[1] for i in images], np.float64)
    weights = sizes / sizes.sum()  # large photos give proportionally more patches
    while True:
        image = images[rng.choice(len(images), p=weights)]
        top = rng.integers(0, image.shape[0] - patch_size + 1)
        left = rng.integers(0, image.shape[1] - patch_size + 1)
        patch = image[top:top + patch_size, left:left + patch_size]
        if rng.integers(2):
            patch = patch[:, ::-1]
        yield np.ascontiguousarray(np.rot90(patch, rng.integers(4)))


def make_paired_dataset(images, task, patch_size, batch_size, seed=0):
    """An endless dataset of (degraded, clean) batches of random patches.

    Args:
      images: list of uint8 [H, W, 3] arrays (each at least ``patch_size`` on both sides).
      task: a name in `tfgan_opt.data.degrade.DEGRADATIONS`.
      patch_size: side of the clean patches; a multiple of the task's scale.
      batch_size: patches per batch.
      seed: patch positions, augmentation and degradation noise.

    Returns:
      ``tf.data.Dataset`` of (float32 [B, p/s, p/s, 3], float32 [B, p, p, 3]) in [-1, 1].

    Raises:
      DataError: no image is large enough, or the patch size does not divide by the scale.
    """
    scale = degradations.scale_of(task)
    if patch_size % scale:
        raise DataError(f"patch_size={patch_size} must be a multiple of {task}'s scale {scale}")
    usable = [i for i in images if min(i.shape[:2]) >= patch_size]
    if not usable:
        raise DataError(f"no image is at least {patch_size}x{patch_size}; lower patch_size")
    dataset = tf.data.Dataset.from_generator(
        lambda: _random_patches(usable, patch_size, seed),
        output_signature=tf.TensorSpec([patch_size, patch_size, 3], tf.uint8))
    dataset = dataset.batch(batch_size, drop_remainder=True)
    seeds = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))

    def pair(batch, batch_seed):
        clean = tf.cast(batch, tf.float32) / 127.5 - 1.0
        return degradations.degrade(task, clean, batch_seed), clean

    return tf.data.Dataset.zip((dataset, seeds)).map(pair).prefetch(2)


def evaluation_pairs(images, task, seed=0, multiple=1):
    """Whole images degraded once, reproducibly: a list of (degraded, clean) float32 pairs
    [h, w, 3] / [s*h, s*w, 3] in [-1, 1]; clean images are cropped to multiples of the scale
    (times ``multiple``: a U-Net's 2**depth, so that the degraded image fits it)."""
    scale = degradations.scale_of(task)
    pairs = []
    for index, image in enumerate(images):
        clean = to_float(crop_to_multiple(image, scale * multiple))[None]
        degraded = degradations.degrade(task, clean, [seed, index]).numpy()
        pairs.append((degraded[0], clean[0]))
    return pairs
