"""Bring your own generator: loading user files, wrapping user models, and `tfgan_opt.compress`
end to end on a tiny Sequential DCGAN in the TensorFlow tutorial's style."""

import os

import numpy as np
import pytest

import tfgan_opt
from tfgan_opt import (ChannelPruneConfig, ConfigError, DataConfig, EvaluationConfig,
                       ExportConfig, ModelFileError, QuantizeConfig,
                       RecoveryConfig)
from tfgan_opt import models
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.core.compat import keras
from tfgan_opt.pipeline import byo

L = keras.layers


def tutorial_style_generator(latent=10, seed=0):
    """The TensorFlow DCGAN tutorial's generator, 8x8 and narrow (Sequential, no InputLayer)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        L.Dense(2 * 2 * 16, use_bias=False, input_shape=(latent,)), L.BatchNormalization(),
        L.LeakyReLU(), L.Reshape((2, 2, 16)),
        L.Conv2DTranspose(8, 5, strides=1, padding="same", use_bias=False),
        L.BatchNormalization(), L.LeakyReLU(),
        L.Conv2DTranspose(4, 5, strides=2, padding="same", use_bias=False),
        L.BatchNormalization(), L.LeakyReLU(),
        L.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh")])


def tutorial_style_discriminator():
    return keras.Sequential([
        L.Conv2D(4, 5, strides=2, padding="same", input_shape=[8, 8, 1]), L.LeakyReLU(),
        L.Dropout(0.3), L.Conv2D(8, 5, strides=2, padding="same"), L.LeakyReLU(),
        L.Dropout(0.3), L.Flatten(), L.Dense(1)])


def test_a_saved_sequential_loads_as_an_equal_functional_network(tmp_path):
    model = tutorial_style_generator()
    path = str(tmp_path / "g.keras")
    model.save(path)
    network = models.load_user_model(path)
    assert not isinstance(network, keras.Sequential)
    assert isinstance(network.layers[0], L.InputLayer)
    assert [layer.name for layer in network.layers[1:]] == [layer.name for layer in model.layers]
    z = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    np.testing.assert_allclose(network(z).numpy(), model(z).numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name,message", [("g.h5", "HDF5"),
                                          ("missing.keras", "does not exist")])
def test_files_that_are_not_keras_zips_are_refused(tmp_path, name, message):
    path = str(tmp_path / name)
    if name.endswith(".h5"):
        tutorial_style_generator().save(path)  # HDF5 runs Lambda bytecode when loaded
    with pytest.raises(ModelFileError, match=message):
        models.load_user_model(path)


def test_a_user_discriminator_without_a_features_layer_distills_its_flatten_output():
    network = models.wrap_user_model(tutorial_style_discriminator(), "discriminator")
    discriminator = models.Discriminator(network, name="discriminator")
    images = np.zeros((2, 8, 8, 1), np.float32)
    assert discriminator.features(images).shape == (2, 2 * 2 * 8)


def test_a_subclassed_model_or_a_mismatched_dataset_is_refused():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelFileError, match="Sequential or Functional"):
        models.wrap_user_model(Sub())
    network = models.wrap_user_model(tutorial_style_generator())
    with pytest.raises(ConfigError, match="image_size=8 channels=1"):
        byo.user_pipeline_config(network, DataConfig(image_size=16))


def test_without_a_discriminator_recovery_is_distillation_only_by_default():
    network = models.wrap_user_model(tutorial_style_generator())
    data = DataConfig(image_size=8)
    channels = ChannelPruneConfig(macs_target=0.5, criterion="taylor")
    recovery = RecoveryConfig(adversarial_weight=0.5, feature_distill_weight=2.0,
                              layer_distill_weight=1.0)
    default = byo.user_pipeline_config(network, data, channels=channels, recovery=recovery,
                                       without_discriminator=byo.without_mode(False))
    assert default.recovery == recovery.replace(adversarial_weight=0.0,
                                                feature_distill_weight=0.0,
                                                train_discriminator=False)
    fresh = byo.user_pipeline_config(network, data, channels=channels, recovery=recovery,
                                     without_discriminator="fresh")
    assert fresh.recovery == recovery
    # No trained discriminator to rank channels with: 'taylor' becomes 'activation'.
    assert default.channels.criterion == fresh.channels.criterion == "activation"
    given = byo.user_pipeline_config(network, data, channels=channels, recovery=recovery,
                                     without_discriminator=byo.without_mode(True))
    assert (given.recovery, given.channels) == (recovery, channels)


def test_a_without_discriminator_mode_beside_a_discriminator_or_unknown_is_refused():
    with pytest.raises(ConfigError, match="applies only when no discriminator is given"):
        byo.without_mode(True, "fresh")
    with pytest.raises(ConfigError, match="without_discriminator='adversarial'"):
        byo.user_pipeline_config(models.wrap_user_model(tutorial_style_generator()),
                                 DataConfig(image_size=8), without_discriminator="adversarial")


def test_the_tutorial_generator_chain_is_a_special_case_of_the_graph():
    from tfgan_opt.compress import channels  # noqa: PLC0415  (imports tfmot)

    generator = models.Generator(models.wrap_user_model(tutorial_style_generator()), name="g")
    groups = channels.channel_groups(generator)
    assert [(g.channels, g.positions) for g in groups] == [(16, 4), (8, 1), (4, 1)]


@pytest.mark.slow
def test_tfgan_opt_compress_runs_the_pipeline_on_a_users_models(tmp_path):
    run_dir = str(tmp_path / "run")
    report = tfgan_opt.compress(
        tutorial_style_generator(), DataConfig(source="digits", image_size=8, batch_size=16),
        run_dir, discriminator=tutorial_style_discriminator(), prune=None,
        channels=ChannelPruneConfig(macs_target=0.4, calibration_samples=16),
        recovery=RecoveryConfig(steps=3), quantize=QuantizeConfig(steps=2),
        export=ExportConfig(formats=("float32", "int8"), representative_samples=8,
                            verify_samples=4, benchmark_batch=0),
        evaluation=EvaluationConfig(num_samples=40, benchmark_runs=2, benchmark_rounds=1))
    assert os.path.exists(report)
    record = read_json(os.path.join(run_dir, "channels", "stage.json"))
    assert record["macs"]["macs"] <= 0.4 * record["macs_dense"]["macs"]
    summary = {v["name"]: v for v in read_json(os.path.join(run_dir, "summary.json"))["variants"]}
    assert summary["pruned+QAT int8"]["float_ops"] == 0
