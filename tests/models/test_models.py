import numpy as np
import pytest

from tfgan_opt import ConfigError, ModelConfig, ModelFileError, models


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_makes_images_of_the_configured_shape_in_tanh_range(arch, channels):
    config = ModelConfig(arch=arch, image_size=12, channels=channels, latent_dim=5, width=4,
                         discriminator_width=4)
    generator = models.build_generator(config, seed=0)
    images = generator(generator.sample_latents(3), training=False).numpy()
    assert images.shape == (3, 12, 12, channels)
    assert generator.image_shape == (12, 12, channels) and generator.latent_dim == 5
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_gives_one_logit_and_features_per_image(arch, spectral_norm):
    config = ModelConfig(arch=arch, image_size=8, latent_dim=4, width=4, discriminator_width=4,
                         spectral_norm=spectral_norm)
    discriminator = models.build_discriminator(config, seed=0)
    images = np.zeros((2, 8, 8, 1), np.float32)
    assert discriminator(images, training=True).shape == (2, 1)
    assert discriminator.features(images).shape[0] == 2


def test_same_seed_gives_same_initial_weights(tiny_model_config):
    a = models.build_generator(tiny_model_config, seed=3).get_weights()
    b = models.build_generator(tiny_model_config, seed=3).get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_get_config_round_trip_rebuilds_an_equal_model(arch):
    config = ModelConfig(arch=arch, image_size=8, latent_dim=4, width=4, discriminator_width=4,
                         spectral_norm=True)
    generator = models.build_generator(config, seed=0)
    discriminator = models.build_discriminator(config, seed=0)
    z = generator.sample_latents(4, seed=1)
    images = generator(z).numpy()
    for original, inputs in [(generator, z), (discriminator, images)]:
        copy = type(original).from_config(original.get_config())
        copy.set_weights(original.get_weights())
        np.testing.assert_allclose(copy(inputs).numpy(), original(inputs).numpy(), atol=1e-6)


def test_saved_generator_loads_with_the_same_outputs(tmp_path, tiny_model_config):
    generator = models.build_generator(tiny_model_config, seed=0)
    path = str(tmp_path / "generator.keras")
    models.save_network(generator, path)
    loaded = models.load_generator(path)
    z = generator.sample_latents(4)
    np.testing.assert_allclose(loaded(z).numpy(), generator(z).numpy(), atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_loading_a_file_that_is_not_a_generator_raises_model_file_error(tmp_path):
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="bogus.keras"):
        models.load_generator(str(bogus))
    with pytest.raises(ModelFileError, match="does not exist"):
        models.load_generator(str(tmp_path / "missing.keras"))


def test_dcgan_rejects_image_size_it_cannot_make():
    with pytest.raises(ConfigError, match="multiple of 4"):
        ModelConfig(arch="dcgan", image_size=30)


def test_unknown_architecture_is_rejected():
    with pytest.raises(ConfigError, match="arch='resnet'"):
        ModelConfig(arch="resnet")


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("image_size, width, discriminator_width, channels, latent_dim",
                         [(8, 4, 4, 1, 4), (16, 8, 6, 3, 10), (28, 16, 12, 1, 100)])
def test_memory_estimate_counts_exactly_the_weights_the_networks_have(
        arch, image_size, width, discriminator_width, channels, latent_dim):
    from tfgan_opt.models import budget
    config = ModelConfig(arch=arch, image_size=image_size, width=width, channels=channels,
                         discriminator_width=discriminator_width, latent_dim=latent_dim)
    generator, discriminator, _ = budget.count_weights(config)
    assert generator == models.build_generator(config).network.count_params()
    assert discriminator == models.build_discriminator(config).network.count_params()


@pytest.mark.parametrize("overrides", [{"image_size": 10000}, {"width": 200000}])
def test_absurd_model_is_refused_before_anything_is_built(overrides):
    from tfgan_opt.models import budget
    config = ModelConfig(**overrides)
    with pytest.raises(ConfigError, match=r"this model needs about [\d.]+ GiB to train .* but the "
                                          r"machine has 24\.0 GiB; use a smaller"):
        budget.check_fits(config, batch_size=64, available=24 * 2**30)
    budget.check_fits(ModelConfig(image_size=28, width=32), batch_size=256, available=24 * 2**30)
