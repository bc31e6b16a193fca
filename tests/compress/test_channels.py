"""Tests for tfgan_opt.compress.channels: channel groups, MACs, criteria, narrowing, save/load."""

import numpy as np
import pytest

from tfgan_opt import models, testing
from tfgan_opt.compress import channels
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import ChannelPruneConfig
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.compress.fold import fold_batch_norm

# Half the channels of every dcgan / mlp group (tiny_model_config: width 4, latent 8, 8x8 images).
HALF = {
    "dcgan": {"project": [0, 3, 5, 6, 9, 10, 12, 15], "up1": [1, 2, 4, 7], "up2": [0, 3]},
    "mlp": {"dense1": list(range(0, 16, 2)), "dense2": list(range(1, 32, 2)),
            "dense3": list(range(0, 64, 2))},
}


def _trained_looking_gan(arch, fold=False, upsample="transpose"):
    """A tiny GAN whose BN layers are not the identity (fresh ones would hide slicing errors)."""
    generator, discriminator, _ = testing.tiny_gan(arch, upsample=upsample)
    testing.randomize_batch_norm(generator.network)
    return (fold_batch_norm(generator) if fold else generator), discriminator


def _assert_same_images(a, b, z):
    np.testing.assert_allclose(a(z, training=False).numpy(), b(z, training=False).numpy(),
                               atol=1e-5, rtol=0)


def _macs(generator):
    return {row["layer"]: row["macs"] for row in channels.count_macs(generator)["layers"]}


@pytest.mark.parametrize("arch,fold,upsample", [
    ("dcgan", False, "transpose"), ("dcgan", True, "transpose"), ("mlp", False, "transpose"),
    ("dcgan", False, "nearest"), ("dcgan", True, "bilinear")])
def test_narrowed_generator_computes_what_the_masked_wide_one_computes(arch, fold, upsample):
    generator, _ = _trained_looking_gan(arch, fold, upsample)
    narrowed = channels.narrow_channels(generator, HALF[arch])
    masked = channels.mask_channels(generator, HALF[arch])
    z = generator.sample_latents(16, seed=3)
    _assert_same_images(narrowed, masked, z)
    # The masking matters: the wide generator itself computes something else.
    assert np.max(np.abs(masked(z).numpy() - generator(z).numpy())) > 1e-3


def test_narrowed_generator_is_a_plain_generator_that_survives_save_and_load(tmp_path):
    generator, _ = _trained_looking_gan("dcgan")
    narrowed = channels.narrow_channels(generator, HALF["dcgan"])
    assert type(narrowed) is type(generator)
    assert [type(layer) for layer in narrowed.network.layers] == [
        type(layer) for layer in generator.network.layers]
    assert narrowed.network.get_layer("up1").kernel.shape == (5, 5, 4, 8)  # [kh, kw, out, in]
    assert narrowed.network.get_layer("reshape").output_shape == (None, 2, 2, 8)
    path = str(tmp_path / "narrow.keras")
    models.save_network(narrowed, path)
    loaded = models.load_generator(path)
    _assert_same_images(loaded, narrowed, generator.sample_latents(8))
    assert loaded.image_shape == generator.image_shape == (8, 8, 1)


def test_count_macs_matches_hand_computation_for_dcgan_before_and_after_narrowing():
    generator, _ = _trained_looking_gan("dcgan")
    # 8x8 images: s = 2, 4w = 16 channels, 5x5 kernels; Conv2DTranspose: H_in * W_in * 25 * in * out
    expected = {"project": 8 * (2 * 2 * 16), "up1": 2 * 2 * 25 * 16 * 8,
                "up2": 2 * 2 * 25 * 8 * 4, "to_image": 4 * 4 * 25 * 4 * 1}
    report = channels.count_macs(generator)
    assert {k: v for k, v in _macs(generator).items() if v} == expected
    assert report["macs"] == 18112 == sum(expected.values())
    params = {row["layer"]: row["params"] for row in report["layers"]}
    assert params == {"project": 512, "project_bn": 4 * 64, "up1": 3200, "up1_bn": 4 * 8,
                      "up2": 800, "up2_bn": 4 * 4, "to_image": 25 * 4 + 1}
    narrowed = channels.narrow_channels(generator, HALF["dcgan"])
    assert {k: v for k, v in _macs(narrowed).items() if v} == {
        "project": 8 * (2 * 2 * 8), "up1": 2 * 2 * 25 * 8 * 4, "up2": 2 * 2 * 25 * 4 * 2,
        "to_image": 4 * 4 * 25 * 2 * 1}
    assert channels.count_macs(narrowed)["params"] == models.count_params(narrowed.network)


def test_count_macs_matches_hand_computation_for_mlp():
    generator, _ = _trained_looking_gan("mlp")
    assert {k: v for k, v in _macs(generator).items() if v} == {
        "dense1": 8 * 16, "dense2": 16 * 32, "dense3": 32 * 64, "to_image": 64 * 64}


def test_resize_conv_groups_pass_through_the_upsampling_layer():
    generator, _ = _trained_looking_gan("dcgan", upsample="nearest")
    groups = {g.producer: g for g in channels.channel_groups(generator)}
    assert sorted(groups) == ["project", "up1", "up2"]
    assert groups["up1"].consumer == "up2" and "up1_bn" in groups["up1"].between
    assert groups["up2"].consumer == "to_image"
    narrowed = channels.narrow_channels(generator, HALF["dcgan"])
    assert narrowed.network.get_layer("up2").kernel.shape == (5, 5, 4, 2)  # Conv2D [kh, kw, in, out]
    # Conv2D MACs count output pixels: up2 runs at 4x4 after the 2x resize, to_image at 8x8.
    assert _macs(narrowed)["up2"] == 4 * 4 * 25 * 4 * 2
    assert _macs(narrowed)["to_image"] == 8 * 8 * 25 * 2 * 1


def test_only_hidden_channels_are_prunable():
    assert [g.producer for g in channels.channel_groups(_trained_looking_gan("dcgan")[0])] == [
        "project", "up1", "up2"]
    groups = channels.channel_groups(_trained_looking_gan("mlp")[0])
    assert [(g.producer, g.consumer, g.positions) for g in groups] == [
        ("dense1", "dense2", 1), ("dense2", "dense3", 1), ("dense3", "to_image", 1)]


ZERO_CHANNELS_KEPT = {"project": list(range(4, 16)), "up1": list(range(2, 8)), "up2": [1, 2, 3]}


def _select_after_masking(generator, discriminator, criterion):
    """Masks all channels but ZERO_CHANNELS_KEPT, then selects a quarter out with ``criterion``."""
    masked = channels.mask_channels(generator, ZERO_CHANNELS_KEPT)
    pruned = channels.select_channels(
        masked, ChannelPruneConfig(ratio={"project": 0.25, "up1": 0.25, "up2": 0.25},
                                   criterion=criterion, calibration_samples=16), discriminator)
    return {name: list(k) for name, k in pruned.items()}, masked


@pytest.mark.parametrize("criterion", sorted(channels.CRITERIA))
def test_every_criterion_removes_channels_that_already_output_zero_first(criterion):
    generator, discriminator = _trained_looking_gan("dcgan")
    assert _select_after_masking(generator, discriminator, criterion)[0] == ZERO_CHANNELS_KEPT


@pytest.mark.parametrize("criterion", sorted(channels.CRITERIA))
def test_every_criterion_scores_a_conditional_generator_with_its_labels(criterion):
    config = testing.tiny_conditional_config()
    generator = models.build_generator(config, seed=0)
    testing.randomize_batch_norm(generator.network)
    discriminator = models.build_discriminator(config, seed=0)
    kept, masked = _select_after_masking(generator, discriminator, criterion)
    assert kept == ZERO_CHANNELS_KEPT
    narrowed = channels.narrow_channels(generator, kept)
    z, labels = generator.sample_latents(6, seed=1)
    np.testing.assert_allclose(narrowed((z, labels)).numpy(), masked((z, labels)).numpy(),
                               atol=1e-5, rtol=0)


def test_macs_target_is_met_by_a_uniform_ratio():
    generator, discriminator = _trained_looking_gan("mlp")
    narrowed = channels.channel_prune(generator, macs_target=0.3, criterion="taylor",
                                      discriminator=discriminator, calibration_samples=16)
    dense = channels.count_macs(generator)["macs"]
    assert channels.count_macs(narrowed)["macs"] <= 0.3 * dense
    widths = [narrowed.network.get_layer(n).units for n in ("dense1", "dense2", "dense3")]
    np.testing.assert_allclose(np.array(widths) / [16, 32, 64], widths[0] / 16, atol=0.05)


def test_channel_multiple_rounds_kept_widths_up():
    generator, _ = _trained_looking_gan("mlp")
    narrowed = channels.channel_prune(generator, 0.7, channel_multiple=8)
    assert [narrowed.network.get_layer(n).units for n in ("dense1", "dense2", "dense3")] == [
        8, 16, 24]


@pytest.mark.parametrize("kwargs,message", [
    (dict(ratio=1.0), "ratio=1.0"), (dict(ratio=-0.1), "ratio=-0.1"),
    (dict(ratio={"up1": 1.5}), "up1=1.5"), (dict(), "exactly one"),
    (dict(ratio=0.5, macs_target=0.5), "exactly one"), (dict(macs_target=0.0), "macs_target=0.0"),
    (dict(ratio=0.5, criterion="l2"), "criterion='l2'"),
    (dict(ratio={"to_image": 0.5}), "to_image"), (dict(macs_target=1e-6), "out of reach"),
    (dict(ratio=0.5, criterion="taylor"), "needs the discriminator"),
])
def test_invalid_pruning_request_raises_config_error(kwargs, message):
    generator, _ = _trained_looking_gan("dcgan")
    with pytest.raises(ConfigError, match=message):
        channels.channel_prune(generator, **kwargs)


@pytest.mark.parametrize("keep,message", [
    ({"to_image": [0]}, "to_image"), ({"up1": []}, "non-empty"), ({"up1": [8]}, "0..7"),
    ({"up1": [1, 1]}, "each index once")])
def test_invalid_channels_to_keep_raise_config_error(keep, message):
    generator, _ = _trained_looking_gan("dcgan")
    with pytest.raises(ConfigError, match=message):
        channels.narrow_channels(generator, keep)


def test_bn_scale_on_a_folded_generator_raises_config_error():
    generator, _ = _trained_looking_gan("dcgan", fold=True)
    with pytest.raises(ConfigError, match="BN-folded"):
        channels.channel_prune(generator, 0.5, criterion="bn_scale")


def test_weight_pruned_generator_is_rejected_before_any_work():
    from tfgan_opt.compress import prune
    from tfgan_opt.core.config import PruneConfig
    generator, _ = _trained_looking_gan("mlp")
    wrapped = prune.apply_pruning(generator, PruneConfig(), total_steps=10)
    with pytest.raises(ValueError, match="wrapped layers"):
        channels.channel_prune(wrapped, 0.5)


@pytest.mark.parametrize("fmt,min_psnr_db", [("float32", 60.0), ("int8", 25.0)])
def test_narrowed_folded_generator_exports_to_tflite_that_matches_keras(fmt, min_psnr_db,
                                                                        tmp_path):
    from tfgan_opt.export import tflite
    from tfgan_opt.core.config import ExportConfig
    generator, _ = _trained_looking_gan("dcgan")
    narrowed = fold_batch_norm(channels.narrow_channels(generator, HALF["dcgan"]))
    to_image = narrowed.network.get_layer("to_image")
    to_image.kernel.assign(to_image.kernel * 40.0)  # outputs over most of [-1, 1], not ~0.01
    config = ExportConfig(representative_samples=32, verify_samples=16)
    path = tflite.export_tflite(narrowed, str(tmp_path / f"{fmt}.tflite"), config, fmt)
    report = tflite.verify_tflite(path, narrowed, config)
    assert report["shape_ok"] and report["delegate"] == "XNNPACK"
    if fmt == "int8":
        assert report["num_float_ops"] == 0, report["float_ops"]
    assert report["psnr_db"] > min_psnr_db, report["psnr_db"]
    # Outputs that vary: a near-constant image would make any PSNR meaningless.
    assert report["max"] - report["min"] > 0.5


def test_channel_prune_config_round_trips_through_json():
    import json
    config = ChannelPruneConfig(ratio={"up1": 0.5, "project": 0.25}, criterion="taylor")
    assert ChannelPruneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def _outputs(model, name, z):
    network = model.network
    outputs = keras.Model(network.inputs, network.get_layer(name).output)(z, training=False)
    return outputs.numpy().reshape(-1, outputs.shape[-1]).astype(np.float64)


def test_recalibration_matches_the_wide_output_statistics_of_a_layer_without_bn():
    generator, _ = _trained_looking_gan("mlp")
    keep = {"dense3": HALF["mlp"]["dense3"]}
    z = generator.sample_latents(64, seed=5)
    narrowed = channels.narrow_channels(generator, keep)
    wide = _outputs(generator, "to_image", z)
    assert np.max(np.abs(_outputs(narrowed, "to_image", z).std(0) - wide.std(0))) > 1e-2
    recalibrated = _outputs(channels.recalibrate_channels(narrowed, generator, z), "to_image", z)
    np.testing.assert_allclose(recalibrated.mean(0), wide.mean(0), atol=1e-4, rtol=0)
    np.testing.assert_allclose(recalibrated.std(0), wide.std(0), rtol=1e-4, atol=1e-6)


def test_recalibration_re_estimates_the_batch_norm_after_a_layer_that_lost_inputs():
    generator, _ = _trained_looking_gan("dcgan")
    z = generator.sample_latents(64, seed=5)
    narrowed = channels.narrow_channels(generator, {"up1": HALF["dcgan"]["up1"]})
    recalibrated = channels.recalibrate_channels(narrowed, generator, z)
    norm = recalibrated.network.get_layer("up2_bn")
    normalized = _outputs(recalibrated, "up2_bn", z)
    variance = _outputs(recalibrated, "up2", z).var(0)
    np.testing.assert_allclose(normalized.mean(0), norm.beta.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        normalized.std(0), np.abs(norm.gamma.numpy()) * np.sqrt(variance / (
            variance + norm.epsilon)), rtol=1e-3)
    # The narrowed generator itself is left alone.
    assert not np.allclose(narrowed.network.get_layer("up2_bn").moving_mean.numpy(),
                           norm.moving_mean.numpy())


@pytest.mark.parametrize("upsample", ["transpose", "nearest", "bilinear"])
def test_channel_pruned_generator_goes_through_weight_pruning_qat_and_int8_export(tmp_path,
                                                                                 upsample):
    from tfgan_opt.export import tflite
    from tfgan_opt.compress import prune
    from tfgan_opt.compress import quantize
    from tfgan_opt.core.config import ExportConfig, PruneConfig
    generator, _ = _trained_looking_gan("dcgan", upsample=upsample)
    narrowed = fold_batch_norm(channels.channel_prune(generator, 0.5))
    to_image = narrowed.network.get_layer("to_image")
    to_image.kernel.assign(to_image.kernel * 40.0)  # outputs over most of [-1, 1]
    pruned = prune.apply_pruning(narrowed, PruneConfig(target_sparsity=0.5, schedule="constant",
                                                       frequency=1), total_steps=1)
    testing.apply_masks_once(pruned)
    qat = quantize.apply_qat(prune.strip_pruning(pruned), calibration_samples=32)
    config = ExportConfig(representative_samples=32, verify_samples=16)
    report = tflite.verify_tflite(tflite.export_tflite(qat, str(tmp_path / "int8.tflite"), config,
                                                       "int8"), qat, config)
    assert report["num_float_ops"] == 0 and report["shape_ok"]
    assert report["psnr_db"] > 25.0, report["psnr_db"]
    sparsity = {row["layer"]: row["sparsity"] for row in prune.sparsity_report(qat)["layers"]}
    np.testing.assert_allclose([sparsity["project"], sparsity["up1"], sparsity["up2"]], 0.5,
                               atol=0.02)
