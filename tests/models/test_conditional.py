"""Class-conditional networks (issue 15): (z, label) -> image, projection discriminator."""

import numpy as np
import pytest

from tfgan_opt import ConfigError, ModelConfig, models
from tfgan_opt.testing import tiny_conditional_config


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_conditional_generator_takes_z_and_label_and_the_label_changes_the_image(arch):
    generator = models.build_generator(tiny_conditional_config(arch), seed=0)
    assert generator.conditional and generator.num_classes == 3 and generator.latent_dim == 8
    z, labels = generator.sample_latents(6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])  # every class in turn
    same_z = np.repeat(z[:1], 3, axis=0)
    images = generator((same_z, np.array([0, 1, 0], np.int32)), training=False).numpy()
    assert images.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(images[0], images[2])  # one z, one class: one image
    assert np.abs(images[0] - images[1]).max() > 0  # one z, two classes: two images
    np.testing.assert_allclose(generator.generate(6), generator.generate(6), rtol=0, atol=0)


def test_unconditional_networks_keep_one_input():
    config = tiny_conditional_config().replace(conditional=False, num_classes=0)
    generator = models.build_generator(config, seed=0)
    assert not generator.conditional and generator.num_classes == 0
    assert len(generator.network.inputs) == 1


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_projection_discriminator_adds_the_class_projection_of_the_features(arch):
    config = tiny_conditional_config(arch)
    discriminator = models.build_discriminator(config, seed=0)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 1], np.int32)
    logits = discriminator((images, labels)).numpy()
    phi = discriminator.features(images).numpy()
    network = discriminator.network
    embedding = network.get_layer("class_projection").get_weights()[0]
    kernel, bias = network.get_layer("logits").get_weights()
    expected = phi @ kernel + bias + np.sum(phi * embedding[labels], axis=1, keepdims=True)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert not discriminator.has_classifier


def test_acgan_discriminator_also_returns_class_logits():
    discriminator = models.build_discriminator(tiny_conditional_config(acgan_weight=1.0), seed=0)
    images, labels = np.zeros((2, 8, 8, 1), np.float32), np.array([0, 2], np.int32)
    logits, classes = discriminator.logits_and_classes((images, labels))
    assert discriminator.has_classifier
    assert logits.shape == (2, 1) and classes.shape == (2, 3)
    np.testing.assert_allclose(discriminator((images, labels)).numpy(), logits.numpy())


def test_saved_conditional_generator_loads_with_its_classes(tmp_path):
    generator = models.build_generator(tiny_conditional_config(), seed=0)
    path = str(tmp_path / "generator.keras")
    models.save_network(generator, path)
    loaded = models.load_generator(path)
    assert loaded.conditional and loaded.num_classes == 3
    np.testing.assert_allclose(loaded.generate(6), generator.generate(6), rtol=0, atol=1e-6)


def test_conditional_config_is_validated():
    with pytest.raises(ConfigError, match="need conditional=True"):
        ModelConfig(num_classes=3)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        models.build_generator(ModelConfig(image_size=8, width=4, conditional=True), seed=0)
