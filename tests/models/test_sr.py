"""Tests of tfgan_opt.models.sr: shapes, DepthToSpace, saving, channel pruning through
depth_to_space and QAT."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt.compress import channels, quantize
from tfgan_opt.models import load_generator, save_network, sr


def _images(size=8, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def test_depth_to_space_layer_is_tf_nn_depth_to_space():
    x = _images(4)
    x = np.concatenate([x] * 4, axis=-1)  # 12 channels
    layer = sr.DepthToSpace(2)
    np.testing.assert_array_equal(layer(x), tf.nn.depth_to_space(x, 2))
    assert layer.compute_output_shape((None, 4, None, 12)).as_list() == [None, 8, None, 3]
    with pytest.raises(ValueError, match="block_size=1"):
        sr.DepthToSpace(1)


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_generator_upscales_any_size(scale):
    generator = sr.build_sr_generator(scale, width=4, blocks=1, seed=0)
    x = _images(6)
    out = generator(x).numpy()
    assert out.shape == (2, 6 * scale, 6 * scale, 3) and generator.scale == scale
    assert generator(_images(10, 1)).shape == (1, 10 * scale, 10 * scale, 3)


def test_unet_and_patchgan_shapes():
    unet = sr.build_unet_generator(width=4, depth=2, seed=0)
    assert unet(_images(16)).shape == (2, 16, 16, 3)
    patchgan = sr.build_patchgan(width=4, layers=2, seed=0)
    assert patchgan(_images(16)).shape == (2, 4, 4, 1)


def test_saved_sr_generator_loads_with_the_same_outputs(tmp_path):
    generator = sr.build_sr_generator(4, width=4, blocks=1, seed=1)
    save_network(generator, str(tmp_path / "g.keras"))
    loaded = load_generator(str(tmp_path / "g.keras"))
    np.testing.assert_allclose(loaded(_images()), generator(_images()), atol=1e-6)


def test_at_size_fixes_the_input_and_keeps_the_weights():
    generator = sr.build_sr_generator(2, width=4, blocks=1, seed=2)
    fixed = sr.at_size(generator, 8)
    assert fixed.network.input_shape == (None, 8, 8, 3)
    np.testing.assert_allclose(fixed(_images()), generator(_images()), atol=1e-6)
    assert sr.at_size(fixed).network.input_shape == (None, None, None, 3)


def test_depth_to_space_ties_its_input_channels_in_groups_of_four():
    generator = sr.at_size(sr.build_sr_generator(4, width=8, blocks=1, seed=3), 8)
    groups = {g.producer: g for g in channels.channel_groups(generator)}
    # upsample0_conv makes 4 * 4 channels, shuffled to 4 channels of 4 positions each;
    # the residual trunk (head, block convs, trunk_out) is one group through the Adds.
    assert groups["upsample0_conv"].channels == 4 and groups["upsample0_conv"].positions == 4
    assert set(groups["head"].producers) == {"head", "block0_conv2", "trunk_out"}
    assert "upsample1_conv" not in groups  # its channels are the output's
    keep = {"upsample0_conv": np.array([0, 2]), "head": np.array([1, 3, 4, 6]),
            "block0_conv1": np.array([0, 5])}
    narrowed = channels.narrow_channels(generator, keep)
    masked = channels.mask_channel_outputs(generator, keep)
    x = _images(8)
    np.testing.assert_allclose(narrowed(x), masked(x), atol=1e-5)
    assert not np.allclose(narrowed(x), generator(x), atol=1e-3)
    assert narrowed.network.get_layer("upsample0_conv").filters == 8  # 2 channels x 4
    assert narrowed.network.get_layer("upsample1_conv").kernel.shape[2] == 2


def test_qat_wraps_depth_to_space_without_quantizers_and_tracks_the_float_model():
    generator = sr.build_sr_generator(2, width=4, blocks=1, seed=4)
    qat = quantize.apply_qat(generator, calibration_samples=4)
    x = _images(8)
    float_out, qat_out = generator(x).numpy(), qat(x).numpy()
    assert qat_out.shape == float_out.shape
    np.testing.assert_allclose(qat_out, float_out, atol=0.1)
