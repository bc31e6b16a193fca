"""Sample grids: the pictures in run directories, TensorBoard and reports."""

import math

import numpy as np

from tfgan_opt.core.artifacts import atomic_save_png


def to_uint8(images):
    """Maps float images in [-1, 1] to uint8 [0, 255] (values outside are clipped)."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, columns=None, padding=1):
    """Tiles images into one picture.

    Args:
      images: float [N, H, W, C] in [-1, 1], C in {1, 3}.
      columns: images per row (default: a square grid).
      padding: pixels of black border between images.

    Returns:
      uint8 [rows * (H + padding) + padding, columns * (W + padding) + padding, C].
    """
    images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    grid = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def save_image_grid(path, images, columns=None, scale=1):
    """Writes `image_grid` of ``images`` as a PNG (atomically), each pixel ``scale`` x ``scale``."""
    grid = image_grid(images, columns)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    atomic_save_png(path, grid)
    return path
