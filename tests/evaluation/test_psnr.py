"""Tests of tfgan_opt.evaluation.psnr: Y-channel PSNR/SSIM against values worked out by hand, and
tiled inference against a whole-image run."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt.evaluation import psnr

_Y_GAIN = (65.481 + 128.553 + 24.966) / 255.0  # Y step per RGB grey step


def _grey(value, size=16):
    return np.full((size, size, 3), value / 127.5 - 1.0, np.float32)


def test_rgb_to_y_matches_bt601_studio_range():
    np.testing.assert_allclose(psnr.rgb_to_y(np.array([[0, 0, 0], [255, 255, 255],
                                                       [255, 0, 0]], np.uint8)),
                               [16.0, 235.0, 16.0 + 65.481], atol=1e-9)


def test_psnr_of_two_greys_matches_closed_form():
    # Y differs by 10 * 219 / 255 everywhere: PSNR = 20 log10(255 / that).
    expected = 20 * math.log10(255.0 / (10 * _Y_GAIN))
    np.testing.assert_allclose(psnr.psnr_y(_grey(100), _grey(110)), expected, rtol=1e-9)


def test_psnr_matches_tf_image_psnr_on_the_y_channel():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (2, 20, 24, 3)).astype(np.float32)
    ya = psnr.rgb_to_y(psnr.to_uint8(a))[2:-2, 2:-2, None]
    yb = psnr.rgb_to_y(psnr.to_uint8(b))[2:-2, 2:-2, None]
    expected = float(tf.image.psnr(ya, yb, max_val=255.0))
    np.testing.assert_allclose(psnr.psnr_y(a, b, border=2), expected, rtol=1e-5)


def test_border_is_shaved_before_scoring():
    target = _grey(120)
    output = target.copy()
    output[:2] = 1.0  # damage only a 2-pixel band
    assert psnr.psnr_y(output, target, border=2) == math.inf
    assert psnr.psnr_y(output, target, border=1) < 30.0
    np.testing.assert_allclose(psnr.ssim_y(output, target, border=2), 1.0, rtol=1e-6)


def test_ssim_of_two_greys_is_the_luminance_term():
    # Constant images: contrast/structure term C2/C2 = 1, luminance (2ab + C1)/(a^2 + b^2 + C1).
    a, b = 16 + 60 * _Y_GAIN, 16 + 160 * _Y_GAIN
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    # float32 inside tf.image.ssim leaves ~1e-4 of noise in the (zero) variances.
    np.testing.assert_allclose(psnr.ssim_y(_grey(60), _grey(160)), expected, rtol=1e-3)


def test_ssim_falls_with_noise_and_is_one_for_identical_images():
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal(0, 0.5, (24, 24, 3)), -1, 1).astype(np.float32)
    noisy = np.clip(image + rng.normal(0, 0.2, image.shape), -1, 1).astype(np.float32)
    np.testing.assert_allclose(psnr.ssim_y(image, image), 1.0, rtol=1e-6)
    assert 0.3 < psnr.ssim_y(noisy, image) < 0.95


def test_restoration_scores_average_per_image_values():
    scores = psnr.restoration_scores([_grey(100), _grey(100)], [_grey(110), _grey(105)])
    np.testing.assert_allclose(scores["mean_psnr"], np.mean(scores["psnr"]))
    np.testing.assert_allclose(scores["psnr"][1] - scores["psnr"][0], 20 * math.log10(2),
                               rtol=1e-6)


def test_mismatched_shapes_and_oversized_border_are_refused():
    with pytest.raises(ValueError, match="one size"):
        psnr.psnr_y(_grey(1, 8), _grey(1, 16))
    with pytest.raises(ValueError, match="nothing left"):
        psnr.psnr_y(_grey(1, 8), _grey(1, 8), border=4)


def _local_model(scale):
    # A 5x5 box blur (receptive field 2 px) then nearest upsampling: exact in float64 terms.
    def predict(batch):
        blurred = tf.nn.avg_pool2d(tf.pad(batch, [[0, 0], [2, 2], [2, 2], [0, 0]], "REFLECT"),
                                   5, 1, "VALID")
        return tf.repeat(tf.repeat(blurred, scale, axis=1), scale, axis=2).numpy()
    return predict


@pytest.mark.parametrize("shape", [(19, 26), (8, 30), (40, 40)])
def test_tiled_run_equals_whole_image_run_away_from_the_edges(shape):
    rng = np.random.default_rng(2)
    image = rng.uniform(-1, 1, shape + (3,)).astype(np.float32)
    predict = _local_model(2)
    tiled = psnr.run_tiled(predict, image, tile=12, scale=2, overlap=3)
    whole = predict(image[None])[0]
    assert tiled.shape == whole.shape
    inner = (slice(4, -4), slice(4, -4))  # the reflect padding of small images differs at edges
    np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)


def test_tile_must_exceed_twice_the_overlap():
    with pytest.raises(ValueError, match="tile=8"):
        psnr.run_tiled(_local_model(1), np.zeros((16, 16, 3), np.float32), 8, 1, overlap=4)
