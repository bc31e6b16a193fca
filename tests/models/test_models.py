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
