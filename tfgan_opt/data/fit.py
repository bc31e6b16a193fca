"""Bringing images of any size to one square size: center crop or pad, then resize.

Real photo folders mix sizes and orientations (``../shared/data/photos/train``: 481x321, 321x481,
680-1024 px). ``crop`` keeps the central square (no distortion, the borders are lost); ``pad``
keeps the whole picture on black borders (no loss, the borders are black). Both then resize with
Pillow's antialiased bilinear filter, as the shared ``tf.data`` map does.
"""

import numpy as np

from tfgan_opt.core.names import FIT_MODES


def square(image: np.ndarray, mode: str) -> np.ndarray:
    """The central square (``crop``) of an image, or the image centred on black (``pad``).

    Args:
      image: uint8 [H, W] or [H, W, C].
      mode: one of `FIT_MODES`.

    Returns:
      uint8 [S, S(, C)] with S = min(H, W) for ``crop``, max(H, W) for ``pad``.

    Raises:
      ValueError: an unknown mode.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"mode={mode!r} is not one of {', '.join(FIT_MODES)}")
    height, width = image.shape[:2]
    if mode == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return image[top:top + side, left:left + side]
    side = max(height, width)
    canvas = np.zeros((side, side) + image.shape[2:], image.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top:top + height, left:left + width] = image
    return canvas


def fit_square(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """`square` then an antialiased resize to ``size`` x ``size``; uint8 in, uint8 out."""
    from PIL import Image  # Lazy: only image folders need Pillow.

    squared = square(image, mode)
    if squared.shape[0] == size:
        return squared
    resized = Image.fromarray(squared).resize((size, size), Image.BILINEAR)
    return np.asarray(resized, np.uint8)
