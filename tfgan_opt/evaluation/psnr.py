"""Restoration metrics: PSNR and SSIM on the luma (Y) channel with the border shaved, and tiled
inference over whole images.

The super-resolution literature (SRCNN, VDSR, EDSR, ESRGAN) measures on 8-bit images converted to
BT.601 Y (MATLAB ``rgb2ycbcr``: Y = 16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]),
with ``scale`` pixels shaved from every side; SSIM is Wang et al. 2004 (11x11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03), computed here by ``tf.image.ssim`` with ``max_val`` 255.
"""

import math

import numpy as np
import tensorflow as tf

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def to_uint8(images) -> np.ndarray:
    """float in [-1, 1] -> uint8 0..255 (rounded, clipped): what a saved output image holds."""
    images = np.asarray(images, np.float64)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def rgb_to_y(images) -> np.ndarray:
    """uint8 RGB [..., 3] -> float64 BT.601 luma [...] in [16, 235]."""
    return 16.0 + np.asarray(images, np.float64) @ _Y_WEIGHTS


def _y_pair(output, target, border):
    output, target = np.asarray(output), np.asarray(target)
    if output.shape != target.shape or output.ndim != 3 or output.shape[-1] != 3:
        raise ValueError(f"output {output.shape} and target {target.shape} must both be "
                         f"[H, W, 3] of one size")
    if min(output.shape[:2]) <= 2 * border:
        raise ValueError(f"a {output.shape[0]}x{output.shape[1]} image has nothing left after "
                         f"shaving a {border}-pixel border")
    shave = (slice(border, -border or None),) * 2
    return rgb_to_y(to_uint8(output))[shave], rgb_to_y(to_uint8(target))[shave]


def psnr_y(output, target, border=0) -> float:
    """PSNR in dB (peak 255) between the Y channels of two images in [-1, 1], [H, W, 3] each,
    after shaving ``border`` pixels; ``inf`` for identical images."""
    output_y, target_y = _y_pair(output, target, border)
    mse = float(np.mean(np.square(output_y - target_y)))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim_y(output, target, border=0) -> float:
    """SSIM between the Y channels of two images in [-1, 1], [H, W, 3] each (border shaved)."""
    output_y, target_y = _y_pair(output, target, border)
    return float(tf.image.ssim(tf.constant(output_y[..., None], tf.float32),
                               tf.constant(target_y[..., None], tf.float32), max_val=255.0))


def restoration_scores(outputs, targets, border=0):
    """Per-image and mean Y-PSNR / Y-SSIM.

    Args:
      outputs, targets: sequences of float [H_i, W_i, 3] in [-1, 1], pairwise of one size.
      border: pixels shaved from every side (the scale, for super-resolution).

    Returns:
      ``{"psnr": [...], "ssim": [...], "mean_psnr": float, "mean_ssim": float}``.
    """
    psnr = [psnr_y(o, t, border) for o, t in zip(outputs, targets)]
    ssim = [ssim_y(o, t, border) for o, t in zip(outputs, targets)]
    return {"psnr": psnr, "ssim": ssim, "mean_psnr": float(np.mean(psnr)),
            "mean_ssim": float(np.mean(ssim))}


def _starts(length, tile, step):
    starts = list(range(0, max(length - tile, 0) + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def run_tiled(predict, image, tile, scale, overlap=8):
    """Runs a fixed-size model over a whole image in overlapping tiles.

    The image is reflect-padded to at least ``tile`` per side; tiles advance by
    ``tile - 2 * overlap`` and each keeps its output only away from its edges (``overlap`` input
    pixels), so a model whose receptive field reaches at most ``overlap`` pixels gives the same
    image as one run on the whole picture.

    Args:
      predict: float32 [1, tile, tile, 3] -> float32 [1, scale*tile, scale*tile, 3].
      image: float32 [h, w, 3].
      tile: input tile side; more than ``2 * overlap``.
      scale: output pixels per input pixel.
      overlap: input pixels of context kept on each side of a tile.

    Returns:
      float32 [scale*h, scale*w, 3].
    """
    if tile <= 2 * overlap:
        raise ValueError(f"tile={tile} must exceed twice overlap={overlap}")
    height, width = image.shape[:2]
    pad_h, pad_w = max(0, tile - height), max(0, tile - width)
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if max(
        pad_h, pad_w) < min(height, width) else "edge")
    out = np.zeros((padded.shape[0] * scale, padded.shape[1] * scale, 3), np.float32)
    step = tile - 2 * overlap
    rows, cols = _starts(padded.shape[0], tile, step), _starts(padded.shape[1], tile, step)
    for top in rows:
        for left in cols:
            result = np.asarray(predict(padded[None, top:top + tile, left:left + tile]))[0]
            # Keep the centre of the tile, and its edge where the tile touches the image edge.
            y0 = 0 if top == 0 else overlap
            x0 = 0 if left == 0 else overlap
            y1 = tile if top + tile >= padded.shape[0] else tile - overlap
            x1 = tile if left + tile >= padded.shape[1] else tile - overlap
            out[(top + y0) * scale:(top + y1) * scale, (left + x0) * scale:(left + x1) * scale] = \
                result[y0 * scale:y1 * scale, x0 * scale:x1 * scale]
    return out[:height * scale, :width * scale]
