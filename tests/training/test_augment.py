"""Tests for differentiable augmentation (tfgan_opt.augment) and its use in the trainer."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt import LossConfig, TrainConfig, models
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.testing import tiny_dataset
from tfgan_opt.training import augment
from tfgan_opt.training.trainer import GANTrainer

ALL = ("color", "translation", "cutout")


def _images(batch=6, size=8, channels=1, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(
        -1, 1, (batch, size, size, channels)).astype(np.float32))


def _params(batch=6, seed=(1, 2)):
    return augment.draw_params(batch, tf.constant(seed, tf.int64))


@pytest.mark.parametrize("policy", [("translation",), ("cutout",), ("translation", "cutout")])
def test_geometric_transform_of_a_sum_is_the_sum_of_transforms_with_the_same_params(policy):
    # Translation and cutout are linear maps chosen by the params: aug(a + b) = aug(a) + aug(b)
    # holds for every example only if a and b got the same shift and the same hole.
    a, b, params = _images(seed=0), _images(seed=1), _params()
    np.testing.assert_allclose(augment.apply_augment(a + b, params, policy).numpy(),
                               (augment.apply_augment(a, params, policy)
                                + augment.apply_augment(b, params, policy)).numpy(),
                               rtol=0, atol=1e-6)


def test_translation_moves_a_pixel_by_the_drawn_offset_and_pads_with_zeros():
    image = np.zeros((1, 16, 16, 1), np.float32)
    image[0, 8, 8, 0] = 1.0
    # Fractions 0 and ~1 give the extreme shifts -2 and +2 (1/8 of 16).
    params = tf.constant([[0.5, 0.5, 0.5, 0.0, 0.9999, 0.5, 0.5]], tf.float32)
    shifted = augment.apply_augment(tf.constant(image), params, ("translation",)).numpy()
    assert shifted[0, 6, 10, 0] == 1.0 and shifted.sum() == 1.0
    border = augment.apply_augment(tf.ones((1, 16, 16, 1)), params, ("translation",)).numpy()
    assert border[0, 14:, :, 0].sum() == 0 and border[0, :, :2, 0].sum() == 0


def test_cutout_zeroes_a_square_of_half_the_side():
    params = tf.constant([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]], tf.float32)
    out = augment.apply_augment(tf.ones((1, 8, 8, 1)), params, ("cutout",)).numpy()
    assert (out == 0).sum() == 16  # 4x4, fully inside when centred
    np.testing.assert_array_equal(out[0, 2:6, 2:6, 0], 0.0)


def test_color_keeps_a_constant_grey_image_constant_and_shifts_its_brightness():
    params = tf.constant([[0.75, 0.3, 0.9, 0.5, 0.5, 0.5, 0.5]], tf.float32)
    out = augment.apply_augment(tf.fill((1, 4, 4, 1), 0.1), params, ("color",)).numpy()
    np.testing.assert_allclose(out, 0.1 + 0.25, rtol=0, atol=1e-6)


def test_augmentation_is_differentiable_with_the_exact_gradient():
    images, params = _images(batch=2, size=8), _params(batch=2)
    theoretical, numerical = tf.test.compute_gradient(
        lambda x: augment.apply_augment(x, params, ALL), [images], delta=1e-2)
    # Piecewise linear in the images: central differences are exact up to float32 rounding.
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=0, atol=2e-3)
    assert np.abs(theoretical[0]).sum() > 0


def test_empty_policy_returns_the_images_unchanged():
    images = _images()
    assert augment.apply_augment(images, _params(), ()) is images


@pytest.mark.parametrize("value, message", [
    (("rotate",), "augment='rotate' is not one of"),
    (("cutout", "cutout"), "names a transform twice"),
])
def test_invalid_policy_raises_config_error(value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(augment=value)


def test_policy_is_stored_in_the_order_it_is_applied():
    assert TrainConfig(augment="cutout,color").augment == ("color", "cutout")
    assert TrainConfig.from_dict(TrainConfig(augment=["translation"]).to_dict()).augment == (
        "translation",)


# ------------------------------------------------------------------------------------ trainer


def _trainer(model_config, **train_kwargs):
    generator = models.build_generator(model_config, seed=0)
    discriminator = models.build_discriminator(model_config, seed=0)
    config = TrainConfig(**{"steps": 2, "log_every": 1, "seed": 0, **train_kwargs})
    return GANTrainer(generator, discriminator, LossConfig(), config)


def test_trainer_pairs_real_and_fake_with_the_same_params_in_the_discriminator_update(
        tiny_model_config, monkeypatch):
    calls = []
    original = augment.apply_augment

    def recording(images, params, policy):
        calls.append(params)
        return original(images, params, policy)

    monkeypatch.setattr(augment, "apply_augment", recording)
    trainer = _trainer(tiny_model_config, augment=ALL, n_critic=2, steps=1)
    trainer.train(tiny_dataset())
    # Traced once: per critic update real and fake share their batch's aug_d; the generator
    # update uses the last batch's aug_g.
    assert len(calls) == 2 * 2 + 1
    for first, second in (calls[0:2], calls[2:4]):
        assert first is second
    assert calls[0] is not calls[2] and calls[4] is not calls[2]


def test_augmentation_stream_leaves_the_latents_and_alpha_unchanged(tiny_model_config):
    plain = next(_trainer(tiny_model_config)._add_noise(tiny_dataset(), 3).as_numpy_iterator())
    augmented = next(_trainer(tiny_model_config, augment=ALL)._add_noise(
        tiny_dataset(), 3).as_numpy_iterator())
    assert set(plain) == {"images", "z_d", "z_g", "alpha"}
    assert set(augmented) == set(plain) | {"aug_d", "aug_g"}
    for key in plain:
        np.testing.assert_array_equal(augmented[key], plain[key])
    assert augmented["aug_d"].shape == (8, augment.NUM_PARAMS)
    assert not np.array_equal(augmented["aug_d"], augmented["aug_g"])


def test_training_with_augmentation_and_n_critic_2_updates_both_networks(tiny_model_config):
    trainer = _trainer(tiny_model_config, augment=ALL, n_critic=2)
    before = [w.numpy().copy() for w in trainer.generator.trainable_weights]
    history = trainer.train(tiny_dataset())
    assert np.isfinite([v for k, v in history[-1].items() if k.endswith("loss")]).all()
    assert any(not np.array_equal(b, a.numpy())
               for b, a in zip(before, trainer.generator.trainable_weights))


def test_same_seed_with_augmentation_gives_the_same_losses(tiny_model_config):
    runs = [_trainer(tiny_model_config, augment=ALL, steps=3).train(tiny_dataset())
            for _ in range(2)]
    np.testing.assert_allclose([h["d_loss"] for h in runs[0]], [h["d_loss"] for h in runs[1]],
                               rtol=1e-6)
