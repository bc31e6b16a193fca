"""Scoring image-to-image generators on whole images: PSNR/SSIM and a patch-level FD.

`restore_images` runs a Keras generator on whole images, or a fixed-size file through
`psnr.run_tiled`; `score_variant` gives Y-PSNR/SSIM (border = scale) and the patch-level
Frechet distance in the project's label-free feature space (`label_free`): outputs and ground
truth are cut into the same non-overlapping patches, so the FD compares the local texture
statistics a GAN phase should bring closer to real photographs.
"""

import numpy as np

from tfgan_opt.evaluation import psnr
from tfgan_opt.evaluation.label_free import get_or_train_label_free_extractor
from tfgan_opt.evaluation.metrics import frechet_distance_from_activations


def restore_images(predict, degraded_images, tile=None, scale=1, overlap=8):
    """Runs ``predict`` (float32 [1, h, w, 3] -> [1, s*h, s*w, 3]) on each image, whole or
    (``tile``) in tiles; returns a list of float32 [s*h, s*w, 3] clipped to [-1, 1]."""
    outputs = []
    for image in degraded_images:
        if tile is None:
            output = np.asarray(predict(image[None]))[0]
        else:
            output = psnr.run_tiled(predict, image, tile, scale, overlap)
        outputs.append(np.clip(output, -1.0, 1.0))
    return outputs


def patches(images, side):
    """Non-overlapping ``side`` x ``side`` patches of each image (row-major), float32
    [N, side, side, 3]."""
    found = [image[top:top + side, left:left + side]
             for image in images
             for top in range(0, image.shape[0] - side + 1, side)
             for left in range(0, image.shape[1] - side + 1, side)]
    return np.stack(found).astype(np.float32)


def patch_extractor(train_images, side, cache_dir, count=4096, steps=300, seed=0):
    """The label-free encoder trained on ``count`` random clean training patches (cached).

    Args:
      train_images: list of uint8 [H, W, 3] training photos.
      side: patch side.
      cache_dir: encoder cache.
    """
    rng = np.random.default_rng(seed)
    usable = [i for i in train_images if min(i.shape[:2]) >= side]
    chosen = []
    for index in rng.integers(0, len(usable), count):
        image = usable[index]
        top = rng.integers(0, image.shape[0] - side + 1)
        left = rng.integers(0, image.shape[1] - side + 1)
        chosen.append(image[top:top + side, left:left + side])
    real = np.stack(chosen).astype(np.float32) / 127.5 - 1.0
    return get_or_train_label_free_extractor(real, cache_dir, steps=steps, seed=seed)


def score_variant(outputs, targets, border, extractor=None, side=32):
    """Y-PSNR/SSIM (per image and mean) and, with ``extractor``, the patch FD to ``targets``."""
    scores = psnr.restoration_scores(outputs, targets, border)
    if extractor is not None:
        real, _ = extractor.activations_and_logits(patches(targets, side))
        fake, _ = extractor.activations_and_logits(patches(outputs, side))
        scores["patch_fd"] = float(frechet_distance_from_activations(real, fake))
    return scores
