"""Tests of tfgan_opt.data.degrade and tfgan_opt.data.paired on synthetic images."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan_opt.core.errors import DataError
from tfgan_opt.data import degrade, paired


def _smooth_images(batch=2, size=16, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (batch, size // 4, size // 4, 3)).astype(np.float32)
    return tf.image.resize(coarse, (size, size), method="bilinear").numpy()


def test_sr_degradations_are_antialiased_bicubic_downscales():
    images = _smooth_images()
    for task, scale in (("sr_x2", 2), ("sr_x4", 4)):
        low = degrade.degrade(task, images, [0, 0]).numpy()
        assert low.shape == (2, 16 // scale, 16 // scale, 3)
        expected = tf.image.resize(images, (16 // scale,) * 2, "bicubic", antialias=True)
        np.testing.assert_allclose(low, np.clip(expected, -1, 1), atol=1e-6)
    # A constant image stays constant (the kernel sums to one).
    flat = np.full((1, 8, 8, 3), 0.25, np.float32)
    np.testing.assert_allclose(degrade.degrade("sr_x4", flat, [0, 0]), 0.25, atol=1e-5)


def test_sr_degradation_refuses_sizes_not_divisible_by_the_scale():
    with pytest.raises(ValueError, match="multiples of 4"):
        degrade.degrade("sr_x4", np.zeros((1, 10, 8, 3), np.float32), [0, 0])


def test_denoise_adds_gaussian_noise_of_sigma_25_and_is_reproducible():
    images = np.zeros((4, 32, 32, 3), np.float32)
    noisy = degrade.degrade("denoise", images, [3, 4]).numpy()
    np.testing.assert_allclose(noisy.std(), 2 * 25 / 255, rtol=0.05)
    np.testing.assert_allclose(noisy.mean(), 0.0, atol=0.01)
    np.testing.assert_array_equal(noisy, degrade.degrade("denoise", images, [3, 4]))
    assert not np.array_equal(noisy, degrade.degrade("denoise", images, [3, 5]))


def test_inpaint_sets_one_to_three_rectangles_to_grey_and_keeps_the_rest():
    images = np.ones((8, 24, 24, 3), np.float32)
    holed = degrade.degrade("inpaint", images, [0, 1]).numpy()
    holes = holed[..., 0] == 0.0
    np.testing.assert_array_equal(holed[~holes], 1.0)
    fraction = holes.mean(axis=(1, 2))
    assert np.all(fraction >= (24 // 8) ** 2 / 24 ** 2) and np.all(fraction <= 3 / 9)
    # Each hole is a rectangle: its rows and columns span a full block in a one-hole image.
    np.testing.assert_array_equal(holed[..., 0] == 0, holed[..., 2] == 0)


def test_colorize_input_is_bt601_luma_in_all_three_channels():
    images = _smooth_images()
    gray = degrade.degrade("colorize", images, [0, 0]).numpy()
    np.testing.assert_allclose(gray[..., 0], images @ np.array([0.299, 0.587, 0.114]),
                               atol=1e-6)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


@pytest.mark.parametrize("task, same", [("sr_x2", False), ("denoise", True)])
def test_baseline_is_bicubic_upsampling_or_the_input(task, same):
    low = _smooth_images(size=8)
    base = degrade.baseline(task, low).numpy()
    if same:
        np.testing.assert_array_equal(base, low)
    else:
        np.testing.assert_allclose(base, np.clip(tf.image.resize(low, (16, 16), "bicubic"),
                                                 -1, 1), atol=1e-6)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="deblur"):
        degrade.scale_of("deblur")


def test_full_images_of_mixed_sizes_and_modes_load_as_rgb(tmp_path):
    Image.fromarray(np.full((10, 14, 3), 9, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((12, 7), 200, np.uint8)).save(tmp_path / "b.png")
    images = paired.load_full_images(f"folder:{tmp_path}")
    assert [i.shape for i in images] == [(10, 14, 3), (12, 7, 3)]
    np.testing.assert_array_equal(images[1], 200)


def test_paired_dataset_yields_degraded_and_clean_patches(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 30, 3), np.uint8), rng.integers(0, 256, (17, 17, 3),
                                                                        np.uint8)]
    batches = list(paired.make_paired_dataset(images, "sr_x4", 16, 3, seed=1).take(2))
    low, high = batches[0]
    assert low.shape == (3, 4, 4, 3) and high.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(low, degrade.degrade("sr_x4", high, [0, 0]), atol=1e-6)
    # Clean patches are exact 8-bit pixels of the photos, scaled to [-1, 1].
    levels = (high.numpy() + 1) * 127.5
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert not np.array_equal(batches[0][1], batches[1][1])


def test_paired_dataset_refuses_patches_larger_than_every_image():
    with pytest.raises(DataError, match="at least 32x32"):
        paired.make_paired_dataset([np.zeros((20, 40, 3), np.uint8)], "denoise", 32, 2)
    with pytest.raises(DataError, match="multiple of"):
        paired.make_paired_dataset([np.zeros((20, 40, 3), np.uint8)], "sr_x4", 18, 2)


def test_evaluation_pairs_crop_to_the_scale_and_are_reproducible():
    image = np.random.default_rng(3).integers(0, 256, (13, 18, 3), np.uint8)
    (low, high), = paired.evaluation_pairs([image], "sr_x4")
    assert low.shape == (3, 4, 3) and high.shape == (12, 16, 3)
    np.testing.assert_allclose(high, image[:12, :16] / 127.5 - 1, atol=1e-6)
    (again, _), = paired.evaluation_pairs([image], "sr_x4")
    np.testing.assert_array_equal(low, again)


def test_evaluation_pairs_crop_to_a_multiple_a_u_net_can_take():
    image = np.zeros((30, 45, 3), np.uint8)
    (low, high), = paired.evaluation_pairs([image], "denoise", multiple=8)
    assert low.shape == high.shape == (24, 40, 3)
