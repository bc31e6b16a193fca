"""Differentiable augmentation of real and fake images (DiffAugment, Zhao et al. 2020).

A discriminator trained on few images memorizes them; augmenting the images it sees, real AND fake,
in BOTH the discriminator and generator updates, keeps it from doing so without leaking the
augmentation into the generated distribution (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training", Sec. 3; Karras et al. 2020 reach the same conclusion for ADA). The
transforms are differentiable in the images, so the generator's gradient flows through them.

The random parameters are not drawn here but in the trainer's input pipeline, from stateless
seeds (seed, element index), like the rest of the step's noise: one device and N replicas then
augment every example identically, and a resumed run continues the same stream. A parameter row
[B, NUM_PARAMS] is applied to every batch of images it is paired with (real and fake of one
update), so the pair gets the same transform, example by example.

Parameter layout (uniform draws in [0, 1), mapped to ranges by `apply_augment`):
``brightness, saturation, contrast, translate_y, translate_x, cutout_y, cutout_x``.
"""

import tensorflow as tf

NUM_PARAMS = 7
# DiffAugment's ranges (Zhao et al. 2020, the official DiffAugment_tf.py).
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def draw_params(batch_size, seed):
    """Uniform [0, 1) parameters for ``batch_size`` examples from a stateless ``seed`` (shape [2]).

    Returns:
      float32 [batch_size, NUM_PARAMS].
    """
    return tf.random.stateless_uniform([batch_size, NUM_PARAMS], seed=seed)


def apply_augment(images, params, policy):
    """Augments ``images`` with the transforms in ``policy``, example i with ``params[i]``.

    Args:
      images: float32 [B, H, W, C] in about [-1, 1].
      params: float32 [B, NUM_PARAMS] uniform in [0, 1) (see `draw_params`).
      policy: tuple of names from ``tfgan_opt.core.config.AUGMENT_POLICIES`` (empty: ``images`` returned as is).

    Returns:
      float32 [B, H, W, C], differentiable in ``images``.
    """
    if "color" in policy:
        images = _color(images, params)
    if "translation" in policy:
        images = _translation(images, params)
    if "cutout" in policy:
        images = _cutout(images, params)
    return images


def _column(params, index):
    return tf.reshape(params[:, index], [-1, 1, 1, 1])


def _color(images, params):
    # Brightness +U(-0.5, 0.5), saturation x U(0, 2) (a no-op on one channel), contrast x U(0.5, 1.5).
    images = images + (_column(params, 0) - 0.5)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean) * (_column(params, 1) * 2.0) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * (_column(params, 2) + 0.5) + mean


def _offsets(fraction, size, ratio):
    """Integer offsets in [-shift, shift] from uniform ``fraction`` [B], shift = size * ratio."""
    shift = int(size * ratio + 0.5)
    return tf.cast(tf.floor(fraction * (2 * shift + 1)), tf.int32) - shift, shift


def _translation(images, params):
    # Shift by up to 1/8 of the side with zero padding, as a gather so the gradient flows back.
    height, width = images.shape[1], images.shape[2]
    dy, pad_y = _offsets(params[:, 3], height, TRANSLATION_RATIO)
    dx, pad_x = _offsets(params[:, 4], width, TRANSLATION_RATIO)
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
    rows = tf.range(height)[None, :] + pad_y - dy[:, None]  # [B, H]
    cols = tf.range(width)[None, :] + pad_x - dx[:, None]  # [B, W]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def _cutout(images, params):
    # Zero a square of half the side centred anywhere in the image (it may hang over an edge).
    height, width = images.shape[1], images.shape[2]
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    centre_y = tf.cast(tf.floor(params[:, 5] * (height + (1 - size_y % 2))), tf.int32)
    centre_x = tf.cast(tf.floor(params[:, 6] * (width + (1 - size_x % 2))), tf.int32)
    top, left = centre_y - size_y // 2, centre_x - size_x // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_y = (rows >= top[:, None]) & (rows < top[:, None] + size_y)  # [B, H]
    inside_x = (cols >= left[:, None]) & (cols < left[:, None] + size_x)  # [B, W]
    inside = inside_y[:, :, None] & inside_x[:, None, :]
    return images * (1.0 - tf.cast(inside, images.dtype))[..., None]
