"""Tests for tfgan_opt.compress.channels on arbitrary Functional graphs: the grouping rules of the
channel dependency graph, the unsupported-layer path, and narrowed == masked on a U-Net and a
ResNet-block generator that then save, load, quantize and export."""

import numpy as np
import pytest

from tfgan_opt import models
from tfgan_opt.compress import channels
from tfgan_opt.compress.quantize import apply_qat
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import ExportConfig
from tfgan_opt.core.errors import ConfigError

L = keras.layers
LATENT = 8


def _randomize(network, seed=0):
    """Random weights, BN statistics far from the identity (fresh ones would hide slicing bugs)."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        layer.set_weights([
            (np.abs(rng.normal(size=w.shape)) + 0.5 if "variance" in w.name
             else rng.normal(size=w.shape) * 0.4).astype(np.float32) for w in layer.weights])
    return network


def _generator(outputs_fn, latent=LATENT):
    z = keras.Input((latent,), name="z")
    return models.Generator(_randomize(keras.Model(z, outputs_fn(z), name="net")),
                            name="generator")


def _project(z, side=4, width=8):
    x = L.Dense(side * side * width, name="project")(z)
    x = L.BatchNormalization(name="project_bn")(x)
    x = L.LeakyReLU(name="project_act")(x)
    return L.Reshape((side, side, width), name="unflatten")(x)


def _to_image(x):
    return L.Conv2D(1, 3, padding="same", activation="tanh", name="to_image")(x)


def unet_generator():
    """Encoder-decoder with skip Concatenates, an Add, depthwise and separable convolutions."""
    def build(z):
        x = _project(z, 8, 8)
        down1 = L.Conv2D(8, 3, padding="same", activation="relu", name="down1")(x)
        down2 = L.Conv2D(12, 3, strides=2, padding="same", name="down2")(down1)
        down2 = L.ReLU(name="down2_act")(L.BatchNormalization(name="down2_bn")(down2))
        bottom = L.DepthwiseConv2D(3, padding="same", name="bottom_dw")(down2)
        bottom = L.SeparableConv2D(12, 3, padding="same", name="bottom_sep")(bottom)
        up = L.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(
            L.Add(name="bottom_add")([bottom, down2]))
        merged = L.Concatenate(name="skip")([up, down1])
        x = L.Conv2D(8, 3, padding="same", name="merge")(merged)
        x = L.MaxPooling2D(1, name="pool")(L.ZeroPadding2D(0, name="pad")(x))
        return _to_image(L.UpSampling2D(2, name="upsample")(L.Cropping2D(((0, 4), (0, 4)),
                                                                         name="crop")(x)))
    return _generator(build)


def resnet_generator():
    """Two residual blocks whose Adds tie the trunk's channels across four convolutions."""
    def build(z):
        x = L.Conv2D(8, 3, padding="same", name="stem")(_project(z, 4, 8))
        for i in range(2):
            h = L.Conv2D(6, 3, padding="same", name=f"block{i}_a")(x)
            h = L.ReLU(name=f"block{i}_relu")(L.BatchNormalization(name=f"block{i}_bn")(h))
            h = L.Conv2D(8, 3, padding="same", name=f"block{i}_b")(h)
            x = L.Add(name=f"block{i}_add")([x, h])
        return _to_image(L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(x))
    return _generator(build)


def _half(generator):
    return {g.producer: np.arange(0, g.channels, 2) for g in channels.channel_groups(generator)}


def _assert_narrowed_equals_masked(generator, keep):
    narrowed = channels.narrow_channels(generator, keep)
    masked = channels.mask_channel_outputs(generator, keep)
    z = generator.sample_latents(8, seed=1)
    np.testing.assert_allclose(narrowed(z).numpy(), masked(z).numpy(), atol=1e-5, rtol=0)
    assert np.max(np.abs(masked(z).numpy() - generator(z).numpy())) > 1e-3
    return narrowed


def _groups(generator):
    return {g.producer: g for g in channels.channel_groups(generator)}


# -- grouping rules ------------------------------------------------------------------------------


def test_add_ties_both_operands_into_one_group():
    groups = _groups(resnet_generator())
    trunk = groups["stem"]
    assert set(trunk.producers) == {"stem", "block0_b", "block1_b"}
    assert set(trunk.consumers) == {"block0_a", "block1_a", "up"}
    assert "block0_b" not in groups and groups["block0_a"].consumers == ("block0_b",)


@pytest.mark.parametrize("merge", [L.Subtract, L.Multiply, L.Maximum, L.Minimum, L.Average])
def test_every_elementwise_merge_ties_its_operands_like_add(merge):
    def build(z):
        x = _project(z, 4, 4)
        a = L.Conv2D(6, 3, padding="same", name="a")(x)
        b = L.Conv2D(6, 3, padding="same", name="b")(x)
        return _to_image(L.ReLU(name="relu")(merge(name="merge")([a, b])))

    generator = _generator(build)
    groups = _groups(generator)
    assert set(groups["a"].producers) == {"a", "b"} and "b" not in groups
    narrowed = _assert_narrowed_equals_masked(generator, {"a": [0, 4], "project": [1, 2]})
    assert narrowed.network.get_layer("b").filters == 2


def test_layer_norm_over_space_passes_channels_and_keeps_its_parameters():
    def build(z):
        x = L.Conv2D(6, 3, padding="same", name="conv")(_project(z, 4, 4))
        x = L.LayerNormalization(axis=(1, 2), name="space_norm")(x)
        return _to_image(L.ReLU(name="relu")(x))

    generator = _generator(build)
    assert "space_norm" not in channels.channel_graph(generator).blocked
    narrowed = _assert_narrowed_equals_masked(generator, {"conv": [1, 2, 5]})
    assert narrowed.network.get_layer("space_norm").gamma.shape == (4, 4)


def test_a_layer_called_twice_keeps_its_channels():
    def build(z):
        x = _project(z, 4, 4)
        shared = L.Conv2D(4, 3, padding="same", name="shared")
        x = L.Conv2D(4, 3, padding="same", name="before")(shared(x))
        return _to_image(L.ReLU(name="relu")(shared(x)))

    generator = _generator(build)
    graph = channels.channel_graph(generator)
    assert "called 2 times" in graph.blocked["shared"]
    assert not graph.groups  # every space touches the shared layer
    with pytest.raises(ConfigError, match="no prunable channels.*shared"):
        channels.channel_prune(generator, 0.5)


def test_concatenate_maps_each_input_to_its_offset():
    generator = unet_generator()
    groups = _groups(generator)
    up, down1 = groups["up"].member("merge", "in"), groups["down1"].member("merge", "in")
    np.testing.assert_array_equal(up.units, np.arange(8))
    np.testing.assert_array_equal(down1.units, np.arange(8, 16))
    narrowed = _assert_narrowed_equals_masked(generator, {"up": [1, 5], "down1": [0, 2, 7]})
    assert narrowed.network.get_layer("merge").kernel.shape == (3, 3, 5, 8)


def test_depthwise_and_separable_pass_channels_and_batch_norm_follows_them():
    groups = _groups(unet_generator())
    down2 = groups["down2"]
    assert set(down2.producers) == {"down2", "bottom_sep"}  # tied by bottom_add
    assert {"down2_bn", "bottom_dw"} <= {m.layer for m in down2.members if m.side == "in"}
    assert "bottom_sep" in down2.consumers and "up" in down2.consumers


def test_dense_reshape_groups_units_row_major():
    group = _groups(unet_generator())["project"]
    assert (group.channels, group.positions) == (8, 64)
    member = group.member("project", "out")
    np.testing.assert_array_equal(member.channels[:10], [0, 1, 2, 3, 4, 5, 6, 7, 0, 1])


def test_flatten_into_dense_is_pruned_per_channel():
    def build(z):
        x = L.Conv2D(6, 3, padding="same", name="conv")(_project(z, 2, 4))
        x = L.Dense(12, name="hidden")(L.Flatten(name="flatten")(L.ReLU(name="relu")(x)))
        return L.Reshape((2, 2, 3), name="image")(L.Dense(12, activation="tanh", name="out")(x))
    generator = _generator(build)
    member = _groups(generator)["conv"].member("hidden", "in")
    np.testing.assert_array_equal(member.channels, np.tile(np.arange(6), 4))
    narrowed = _assert_narrowed_equals_masked(generator, {"conv": [0, 3], "hidden": [1, 2, 3]})
    assert narrowed.network.get_layer("hidden").kernel.shape == (8, 3)


def test_channels_reaching_the_output_are_not_prunable():
    generator = resnet_generator()
    assert "to_image" not in _groups(generator)
    with pytest.raises(ConfigError, match="to_image: not prunable"):
        channels.narrow_channels(generator, {"to_image": [0]})


@pytest.mark.parametrize("blocker", ["lambda", "softmax", "layer_norm", "custom"])
def test_a_layer_without_a_rule_keeps_its_channels_and_its_neighbours(blocker):
    class Custom(L.Layer):
        def call(self, x):
            return x[..., ::-1]  # mixes channel order: pruning through it would be wrong

    def build(z):
        x = L.Conv2D(6, 3, padding="same", name="before")(_project(z, 4, 4))
        x = {"lambda": L.Lambda(lambda t: t[..., ::-1], name="blocker"),
             "softmax": L.Softmax(name="blocker"),
             "layer_norm": L.LayerNormalization(name="blocker"),
             "custom": Custom(name="blocker")}[blocker](x)
        x = L.Conv2D(5, 3, padding="same", name="after")(x)
        return _to_image(L.ReLU(name="relu")(x))

    generator = _generator(build)
    graph = channels.channel_graph(generator)
    assert "blocker" in graph.blocked
    assert {g.producer for g in graph.groups} == {"project", "after"}
    narrowed = channels.channel_prune(generator, 0.5, calibration_samples=16)
    assert narrowed.network.get_layer("before").filters == 6
    assert narrowed.network.get_layer("after").filters == 2  # round(2.5)


def test_a_model_with_nothing_to_prune_raises_config_error_naming_the_blocker():
    def build(z):
        x = L.Reshape((2, 2, 2))(L.Dense(8, name="project")(z))
        x = L.Lambda(lambda t: t * 2.0, name="scale")(x)
        return L.Conv2D(1, 1, activation="tanh", name="to_image")(x)

    with pytest.raises(ConfigError, match="no prunable channels.*scale"):
        channels.channel_prune(_generator(build), 0.5)


# -- whole architectures -------------------------------------------------------------------------


@pytest.mark.parametrize("build", [unet_generator, resnet_generator])
def test_narrowed_generator_equals_the_masked_one(build):
    generator = build()
    narrowed = _assert_narrowed_equals_masked(generator, _half(generator))
    assert [type(a) for a in narrowed.network.layers] == [
        type(b) for b in generator.network.layers]
    assert channels.count_macs(narrowed)["macs"] < 0.45 * channels.count_macs(generator)["macs"]


@pytest.mark.parametrize("build", [unet_generator, resnet_generator])
def test_weight_masks_equal_activation_masks_when_activations_keep_zero(build):
    generator = build()
    keep = _half(generator)
    z = generator.sample_latents(8, seed=2)
    np.testing.assert_allclose(channels.mask_channels(generator, keep)(z).numpy(),
                               channels.mask_channel_outputs(generator, keep)(z).numpy(),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("criterion", ["l1", "bn_scale", "activation", "taylor"])
def test_every_criterion_ranks_tied_channels(criterion):
    generator = resnet_generator()
    discriminator = models.Discriminator(keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(4, 3, strides=2), L.LeakyReLU(), L.Flatten(),
        L.Dense(1)]), name="d")
    if criterion == "bn_scale":
        with pytest.raises(ConfigError, match="bn_scale"):  # the stem group has no BN
            channels.channel_prune(generator, 0.5, criterion=criterion)
        return
    narrowed = channels.channel_prune(generator, 0.5, criterion=criterion,
                                      discriminator=discriminator, calibration_samples=16)
    assert narrowed.network.get_layer("stem").filters == 4
    assert narrowed.network.get_layer("block1_b").filters == 4


def test_macs_target_on_a_graph_is_met():
    generator = unet_generator()
    narrowed = channels.channel_prune(generator, macs_target=0.4, calibration_samples=16)
    assert channels.count_macs(narrowed)["macs"] <= 0.4 * channels.count_macs(generator)["macs"]


@pytest.mark.parametrize("build", [unet_generator, resnet_generator])
def test_pruned_graph_generator_saves_loads_quantizes_and_exports_int8(build, tmp_path):
    from tfgan_opt.export import tflite  # noqa: PLC0415  (only this test converts)

    generator = build()
    narrowed = channels.channel_prune(generator, 0.5, calibration_samples=16)
    path = str(tmp_path / "narrow.keras")
    models.save_network(narrowed, path)
    loaded = models.load_generator(path)
    z = generator.sample_latents(4)
    np.testing.assert_allclose(loaded(z).numpy(), narrowed(z).numpy(), atol=1e-6, rtol=0)
    qat = apply_qat(loaded, calibration_samples=16)
    # 8-bit ranges of a random-weight network: close on average, not everywhere.
    np.testing.assert_allclose(np.mean(np.abs(qat(z).numpy() - narrowed(z).numpy())), 0.0,
                               atol=0.06)
    out = str(tmp_path / "g_int8.tflite")
    config = ExportConfig(verify_samples=4)
    tflite.export_tflite(qat, out, config, "int8")
    report = tflite.verify_tflite(out, qat, config)
    assert report["shape_ok"] and report["num_float_ops"] == 0
    np.testing.assert_allclose(report["mean_abs_error"], 0.0, atol=0.06)
