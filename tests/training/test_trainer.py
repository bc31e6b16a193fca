import os

import numpy as np
import pytest
import tensorflow as tf
from tfgan_opt.testing import tiny_dataset

from tfgan_opt import LossConfig, NonFiniteError, TrainConfig, models
from tfgan_opt.training.trainer import GANTrainer


def _trainer(model_config, loss="non_saturating", seed=0, **train_kwargs):
    generator = models.build_generator(model_config, seed=seed)
    discriminator = models.build_discriminator(model_config, seed=seed)
    config = TrainConfig(**{"steps": 1, "log_every": 1, "seed": seed, **train_kwargs})
    return GANTrainer(generator, discriminator, LossConfig(name=loss, l2=1e-4), config)


def _copy(weights):
    return [np.array(w) for w in weights]


@pytest.mark.parametrize("loss", ["non_saturating", "minimax", "wasserstein", "wgan_gp", "hinge"])
def test_one_step_of_each_loss_updates_both_networks_with_finite_losses(tiny_model_config, loss):
    trainer = _trainer(tiny_model_config, loss=loss)
    g_before = _copy(trainer.generator.trainable_weights)
    d_before = _copy(trainer.discriminator.trainable_weights)
    history = trainer.train(tiny_dataset())
    assert np.isfinite([v for k, v in history[-1].items() if k.endswith("loss")]).all()
    for before, model in [(g_before, trainer.generator), (d_before, trainer.discriminator)]:
        assert any(not np.array_equal(b, a.numpy()) for b, a in zip(before, model.trainable_weights))
    if loss == "wgan_gp":
        assert history[-1]["gradient_penalty"] > 0


def test_wasserstein_clips_every_critic_weight(tiny_model_config):
    trainer = _trainer(tiny_model_config, loss="wasserstein", steps=2, n_critic=2,
                       discriminator_lr=0.5)
    trainer.train(tiny_dataset())
    largest = max(float(np.abs(w.numpy()).max()) for w in trainer.discriminator.trainable_weights)
    assert largest <= 0.01 + 1e-7
    np.testing.assert_allclose(largest, 0.01, rtol=1e-5)  # the large rate pushes weights to the bound


@pytest.mark.parametrize("decay, expected_decay", [(0.05, 0.05), (0.9, 0.1)])
def test_ema_generator_is_the_decayed_average_of_the_weights(tiny_model_config, decay,
                                                              expected_decay):
    # The first update (step 0) uses min(decay, (1 + 0) / (10 + 0)) = min(decay, 0.1): warm-up.
    trainer = _trainer(tiny_model_config, ema_decay=decay)
    initial = _copy(trainer.generator.network.weights)
    trainer.train(tiny_dataset())
    for w0, w1, ema in zip(initial, trainer.generator.network.weights, trainer.ema_network.weights):
        np.testing.assert_allclose(ema.numpy(), expected_decay * w0 + (1 - expected_decay) * w1.numpy(),
                                   rtol=1e-5, atol=1e-7)
    assert trainer.final_generator().network is trainer.ema_network
    # The saved EMA generator must stay fine-tunable (pruning recovery and QAT train it).
    assert len(trainer.final_generator().trainable_variables) == len(
        trainer.generator.trainable_variables)


def test_same_seed_gives_same_losses(tiny_model_config):
    runs = [_trainer(tiny_model_config, seed=5, steps=3).train(tiny_dataset()) for _ in range(2)]
    np.testing.assert_allclose([h["g_loss"] for h in runs[0]], [h["g_loss"] for h in runs[1]],
                               rtol=1e-6)


def test_rerun_on_run_dir_resumes_from_the_last_checkpoint(tmp_path, tiny_model_config):
    run_dir = str(tmp_path / "run")
    first = _trainer(tiny_model_config, steps=2, checkpoint_every=2)
    first.train(tiny_dataset(), run_dir=run_dir)
    trained = _copy(first.generator.network.weights)

    second = _trainer(tiny_model_config, steps=4, checkpoint_every=2)
    assert second.restore(run_dir) == 2
    for expected, restored in zip(trained, second.generator.network.weights):
        np.testing.assert_array_equal(restored.numpy(), expected)
    history = second.train(tiny_dataset(), run_dir=run_dir)
    assert [h["step"] for h in history] == [3, 4]
    assert int(second.step.numpy()) == 4
    assert int(second.generator_optimizer.iterations.numpy()) == 4  # optimizer state restored too
    assert sorted(os.listdir(os.path.join(run_dir, "samples"))) == ["step_000002.png",
                                                                     "step_000004.png"]
    assert os.listdir(os.path.join(run_dir, "logs"))


def test_non_finite_loss_stops_training_naming_the_step(tiny_model_config):
    images = np.full((8, 8, 8, 1), np.nan, np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, np.int64))).repeat().batch(8)
    trainer = _trainer(tiny_model_config, steps=3)
    with pytest.raises(NonFiniteError, match="at step 1"):
        trainer.train(dataset)


def test_progress_columns_show_each_loss_once():
    from tfgan_opt.training.checkpointing import progress_columns

    # No regularization: the adversarial loss is the whole loss, shown once.
    assert progress_columns({"d_adv_loss": 1.25, "d_loss": 1.25, "g_adv_loss": 0.5,
                             "g_loss": 0.5, "steps": 3.0}) == "d_loss 1.2500  g_loss 0.5000"
    # Recovery: the total differs from its adversarial part, so both are shown.
    assert progress_columns({"g_adv_loss": 0.5, "g_loss": 1.5, "distill_loss": 1.0}) == \
        "distill_loss 1.0000  g_adv_loss 0.5000  g_loss 1.5000"

# ------------------------------------------------------------------------ R1, simultaneous update


@pytest.mark.parametrize("loss", ["non_saturating", "hinge"])
def test_r1_penalty_enters_the_discriminator_loss(tiny_model_config, loss):
    generator = models.build_generator(tiny_model_config, seed=0)
    discriminator = models.build_discriminator(tiny_model_config, seed=0)
    trainer = GANTrainer(generator, discriminator, LossConfig(name=loss, r1_weight=10.0),
                         TrainConfig(steps=1, log_every=1))
    metrics = trainer.train(tiny_dataset())[-1]
    assert metrics["r1_penalty"] > 0
    np.testing.assert_allclose(metrics["d_loss"], metrics["d_adv_loss"]
                               + 5.0 * metrics["r1_penalty"], rtol=1e-5)


def test_lazy_r1_runs_on_every_kth_step_with_k_times_the_weight(tiny_model_config):
    def run(loss_config, steps):
        trainer = GANTrainer(models.build_generator(tiny_model_config, seed=0),
                             models.build_discriminator(tiny_model_config, seed=0), loss_config,
                             TrainConfig(steps=steps, log_every=1))
        return trainer, trainer.train(tiny_dataset())

    _, history = run(LossConfig(r1_weight=2.0, r1_every=3), steps=4)
    assert ["r1_penalty" in h for h in history] == [True, False, False, True]
    for h in history:
        np.testing.assert_allclose(h["d_loss"], h["d_adv_loss"] + 3.0 * h.get("r1_penalty", 0.0),
                                   rtol=1e-5)
    assert LossConfig(r1_weight=0.0, r1_every=16).r1_every == 1  # without R1 it means nothing
    # Its R1 step is the ordinary R1 step with gamma * k.
    lazy, _ = run(LossConfig(r1_weight=2.0, r1_every=3), steps=1)
    eager, _ = run(LossConfig(r1_weight=6.0), steps=1)
    for a, b in zip(lazy.discriminator.trainable_weights, eager.discriminator.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def _tutorial_step(generator, discriminator, g_opt, d_opt, images, z):
    """The TensorFlow DCGAN tutorial's train_step, written out by hand."""
    from tfgan_opt.core.compat import keras
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        generated = generator(z, training=True)
        real_output = discriminator(images, training=True)
        fake_output = discriminator(generated, training=True)
        gen_loss = bce(tf.ones_like(fake_output), fake_output)
        disc_loss = (bce(tf.ones_like(real_output), real_output)
                     + bce(tf.zeros_like(fake_output), fake_output))
    g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables),
                              generator.trainable_variables))
    d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables),
                              discriminator.trainable_variables))
    return float(gen_loss), float(disc_loss)


def test_simultaneous_step_equals_the_hand_written_tutorial_step(tiny_model_config):
    from tfgan_opt.core.compat import keras
    config = TrainConfig(steps=3, log_every=1, update="simultaneous")
    trainer = GANTrainer(models.build_generator(tiny_model_config, seed=0),
                         models.build_discriminator(tiny_model_config, seed=0), LossConfig(),
                         config)
    history = trainer.train(tiny_dataset())
    generator = models.build_generator(tiny_model_config, seed=0)
    discriminator = models.build_discriminator(tiny_model_config, seed=0)
    g_opt = keras.optimizers.Adam(config.generator_lr, beta_1=config.beta_1, beta_2=config.beta_2)
    d_opt = keras.optimizers.Adam(config.discriminator_lr, beta_1=config.beta_1,
                                  beta_2=config.beta_2)
    # The same images and z: the trainer's input pipeline, read from the start.
    batches = trainer._add_noise(tiny_dataset(), 0).as_numpy_iterator()
    for logged in history:
        batch = next(batches)
        g_loss, d_loss = _tutorial_step(generator, discriminator, g_opt, d_opt,
                                        batch["images"], batch["z_d"])
        np.testing.assert_allclose([logged["g_loss"], logged["d_loss"]], [g_loss, d_loss],
                                   rtol=1e-5)
    for model, reference in [(trainer.generator, generator),
                             (trainer.discriminator, discriminator)]:
        for got, expected in zip(model.network.weights, reference.network.weights):
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-6,
                                       err_msg=expected.name)


@pytest.mark.parametrize("loss_kwargs, train_kwargs, message", [
    ({"name": "wgan_gp"}, {}, "wgan_gp gradient penalty"),
    ({"name": "wasserstein"}, {}, "weight clipping"),
    ({"r1_weight": 1.0}, {}, "r1_weight=1.0"),
])
def test_simultaneous_update_with_a_penalty_or_clipping_raises_config_error(
        tiny_model_config, loss_kwargs, train_kwargs, message):
    from tfgan_opt import ConfigError
    with pytest.raises(ConfigError, match=message):
        GANTrainer(models.build_generator(tiny_model_config, seed=0),
                   models.build_discriminator(tiny_model_config, seed=0),
                   LossConfig(**loss_kwargs), TrainConfig(update="simultaneous", **train_kwargs))


def test_simultaneous_update_with_n_critic_2_raises_config_error():
    from tfgan_opt import ConfigError
    with pytest.raises(ConfigError, match="needs n_critic=1, not 2"):
        TrainConfig(update="simultaneous", n_critic=2)
