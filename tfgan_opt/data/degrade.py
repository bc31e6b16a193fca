"""Named degradations: a clean (high-resolution) image -> the input of an image-to-image model.

Each entry of `DEGRADATIONS` has one signature, ``(images, seed) -> degraded``: images float32
[B, H, W, 3] in [-1, 1], ``seed`` a stateless seed (shape [2] int) so a degradation can be
reproduced exactly (evaluation) or drawn afresh per batch (training). `baseline` gives the
classical answer a model must beat, measured by the same metric code: bicubic upsampling for
super-resolution, the degraded image itself for the others.

* ``sr_x2`` / ``sr_x4``: bicubic downscale by 2 / 4 with antialiasing (the MATLAB ``imresize``
  convention of the super-resolution literature; ``tf.image.resize`` uses the same Keys a=-0.5
  kernel, widened by the scale). H and W must be multiples of the scale.
* ``denoise``: additive Gaussian noise, sigma 25 on the 0..255 scale (the usual benchmark level),
  clipped to the valid range.
* ``inpaint``: one to three random rectangular holes, each 1/8 to 1/3 of the side, filled with
  mid-grey (0 in [-1, 1]).
* ``colorize``: BT.601 luma repeated to 3 channels.
"""

import tensorflow as tf

from tfgan_opt.core.names import I2I_TASKS

NOISE_SIGMA_255 = 25.0
_MAX_HOLES = 3
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def scale_of(task: str) -> int:
    """The upscaling factor a task's model applies (1 for same-size restoration)."""
    if task not in I2I_TASKS:
        raise ValueError(f"task={task!r} is not one of {', '.join(I2I_TASKS)}")
    return int(task[len("sr_x"):]) if task.startswith("sr_x") else 1


def _check_images(images, scale=1):
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be float32 [B, H, W, 3], got shape {images.shape}")
    height, width = images.shape[1], images.shape[2]
    if height is not None and width is not None and (height % scale or width % scale):
        raise ValueError(f"images of {height}x{width} cannot be downscaled by {scale}; crop "
                         f"them to multiples of {scale} (see paired.crop_to_multiple)")
    return images


def downscale_bicubic(images, scale):
    """Antialiased bicubic downscale: float32 [B, H, W, 3] -> [B, H/scale, W/scale, 3], clipped
    to [-1, 1]."""
    images = _check_images(images, scale)
    size = tf.shape(images)[1:3] // scale
    low = tf.image.resize(images, size, method="bicubic", antialias=True)
    return tf.clip_by_value(low, -1.0, 1.0)


def upscale_bicubic(images, scale):
    """Bicubic upsampling (the super-resolution baseline), clipped to [-1, 1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    size = tf.shape(images)[1:3] * scale
    return tf.clip_by_value(tf.image.resize(images, size, method="bicubic"), -1.0, 1.0)


def _sr(scale):
    def degrade(images, seed):
        del seed  # deterministic
        return downscale_bicubic(images, scale)
    degrade.__name__ = f"sr_x{scale}"
    return degrade


def add_noise(images, seed, sigma_255=NOISE_SIGMA_255):
    """Gaussian noise of ``sigma_255`` / 255 of the full range, clipped to [-1, 1]."""
    images = _check_images(images)
    noise = tf.random.stateless_normal(tf.shape(images), seed, stddev=2.0 * sigma_255 / 255.0)
    return tf.clip_by_value(images + noise, -1.0, 1.0)


def punch_holes(images, seed):
    """One to three random rectangles per image set to 0 (mid-grey)."""
    images = _check_images(images)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    count = tf.random.stateless_uniform([batch, 1, 1], seeds[0], 1, _MAX_HOLES + 1, tf.int32)
    holes = tf.zeros([batch, height, width], tf.bool)
    for index in range(_MAX_HOLES):
        hole_seeds = tf.random.experimental.stateless_split(seeds[1 + index], 4)

        def draw(i, low, high):
            return tf.random.stateless_uniform([batch, 1, 1], hole_seeds[i], low, high)

        hole_h = tf.cast(draw(0, 1 / 8, 1 / 3) * tf.cast(height, tf.float32), tf.int32)
        hole_w = tf.cast(draw(1, 1 / 8, 1 / 3) * tf.cast(width, tf.float32), tf.int32)
        top = tf.cast(draw(2, 0, 1) * tf.cast(height - hole_h, tf.float32), tf.int32)
        left = tf.cast(draw(3, 0, 1) * tf.cast(width - hole_w, tf.float32), tf.int32)
        inside = ((rows >= top) & (rows < top + hole_h) & (cols >= left) & (cols < left + hole_w)
                  & (index < count))
        holes = holes | inside
    return tf.where(holes[..., None], tf.zeros_like(images), images)


def to_gray(images, seed):
    """BT.601 luma, repeated to 3 channels."""
    del seed
    images = _check_images(images)
    luma = tf.reduce_sum(images * tf.constant(_LUMA_WEIGHTS), axis=-1, keepdims=True)
    return tf.repeat(luma, 3, axis=-1)


DEGRADATIONS = {
    "sr_x2": _sr(2),
    "sr_x4": _sr(4),
    "denoise": add_noise,
    "inpaint": punch_holes,
    "colorize": to_gray,
}


def degrade(task, images, seed):
    """``DEGRADATIONS[task](images, seed)``, with the task name checked."""
    scale_of(task)
    return DEGRADATIONS[task](images, seed)


def baseline(task, degraded):
    """The classical restoration a model must beat: bicubic upsampling for ``sr_x*``, the
    degraded input itself for the same-size tasks. float32 [B, h, w, 3] -> [B, s*h, s*w, 3]."""
    scale = scale_of(task)
    if scale > 1:
        return upscale_bicubic(degraded, scale)
    return tf.convert_to_tensor(degraded, tf.float32)
