"""Conditional GAN training and recovery (issue 15): labels reach both networks, and the
distillation teacher sees the same (z, label) pairs as the student."""

import numpy as np
import pytest

from tfgan_opt import LossConfig, TrainConfig, models
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.testing import tiny_conditional_config, tiny_dataset
from tfgan_opt.training import noise
from tfgan_opt.training.recovery import RecoveryTrainer
from tfgan_opt.training.trainer import GANTrainer


def test_step_noise_draws_fake_labels_in_range_and_keeps_the_real_ones():
    batch = next(iter(noise.add_step_noise(tiny_dataset(), 0, seed=0, latent_dim=4, n_critic=1,
                                           num_classes=3)))
    _, real_labels = next(iter(tiny_dataset()))
    np.testing.assert_array_equal(batch["labels"].numpy(), real_labels.numpy())
    for key in ("y_d", "y_g"):
        assert batch[key].dtype.name == "int32"
        assert 0 <= batch[key].numpy().min() and batch[key].numpy().max() < 3
    unconditional = next(iter(noise.add_step_noise(tiny_dataset(), 0, seed=0, latent_dim=4,
                                                   n_critic=1)))
    assert "y_d" not in unconditional  # and its z is unchanged by the label stream:
    np.testing.assert_array_equal(unconditional["z_g"].numpy(), batch["z_g"].numpy())


def test_conditional_acgan_trains_with_ema_and_resumes(tmp_path):
    # The projection-only path trains in test_recovery_teacher_gets_the_students_labels.
    acgan_weight = 1.0
    config = tiny_conditional_config(acgan_weight=acgan_weight)

    def trainer(steps):
        return GANTrainer(models.build_generator(config, seed=0),
                          models.build_discriminator(config, seed=0), LossConfig(r1_weight=1.0),
                          TrainConfig(steps=steps, ema_decay=0.9, log_every=1, checkpoint_every=2),
                          acgan_weight=acgan_weight or 1.0)

    history = trainer(2).train(tiny_dataset(), run_dir=str(tmp_path))
    assert history[-1]["d_class_loss"] > 0 and history[-1]["g_class_loss"] > 0
    resumed = trainer(3)
    assert resumed.train(tiny_dataset(), run_dir=str(tmp_path))[0]["step"] == 3
    images = resumed.final_generator().generate(6)
    assert images.shape == (6, 8, 8, 1) and np.all(np.isfinite(images))


@pytest.mark.parametrize("class_vectors", ["fixed", "learned"])
def test_fixed_class_vectors_stay_at_their_start_through_training_and_saving(tmp_path,
                                                                             class_vectors):
    config = tiny_conditional_config(class_vectors=class_vectors)
    generator = models.build_generator(config, seed=0)
    start = generator.network.get_layer("class_embedding").get_weights()[0]
    trainer = GANTrainer(generator, models.build_discriminator(config, seed=0), LossConfig(),
                         TrainConfig(steps=3, generator_lr=1e-2, ema_decay=0.5, log_every=1))
    trainer.train(tiny_dataset())
    path = str(tmp_path / "generator.keras")
    models.save_network(trainer.final_generator(), path)
    for network in (generator.network, models.load_generator(path).network):
        table = network.get_layer("class_embedding").get_weights()[0]
        if class_vectors == "fixed":
            np.testing.assert_allclose(table, start, rtol=1e-6)  # the EMA's arithmetic: 1 ulp
            assert not network.get_layer("class_embedding").trainable
        else:
            assert np.abs(table - start).max() > 1e-4
    # Either way the other weights trained.
    assert np.abs(generator.network.get_layer("project").get_weights()[0]
                  - models.build_generator(config, seed=0).network.get_layer(
                      "project").get_weights()[0]).max() > 1e-4


def test_recovery_teacher_gets_the_students_labels():
    config = tiny_conditional_config()
    teacher = fold_batch_norm(models.build_generator(config, seed=0))  # no batch statistics
    student = teacher.with_network(fold_batch_norm(models.build_generator(config, seed=0)).network)
    trainer = RecoveryTrainer(student, teacher, models.build_discriminator(config, seed=0),
                              RecoveryConfig(steps=1, feature_distill_weight=0.0),
                              LossConfig(), TrainConfig(steps=1, log_every=1))
    history = trainer.train(tiny_dataset())
    # The first step's loss is measured before the update: identical networks on the same
    # (z, label) pairs give exactly 0 (a teacher fed other labels would not).
    np.testing.assert_allclose(history[0]["distill_loss"], 0.0, atol=1e-6)
    z, _ = teacher.sample_latents(6)
    other = teacher((z, np.full(6, 2, np.int32))).numpy()
    assert np.abs(other - student((z, np.zeros(6, np.int32))).numpy()).mean() > 0


def test_recovery_trains_a_students_fixed_class_vectors():
    # Fixed in GAN training only: a compressed student may re-encode the class.
    config = tiny_conditional_config(class_vectors="fixed")
    teacher = fold_batch_norm(models.build_generator(config, seed=0))
    student = fold_batch_norm(models.build_generator(config, seed=1))
    start = student.network.get_layer("class_embedding").get_weights()[0]
    assert not student.network.get_layer("class_embedding").trainable
    RecoveryTrainer(student, teacher, models.build_discriminator(config, seed=0),
                    RecoveryConfig(steps=2, learning_rate=1e-2), LossConfig(),
                    TrainConfig(steps=2, log_every=1)).train(tiny_dataset())
    table = student.network.get_layer("class_embedding").get_weights()[0]
    assert np.abs(table - start).max() > 1e-4


def test_mode_seeking_pairs_share_their_class_and_enter_the_generator_loss():
    batch = next(iter(noise.add_step_noise(tiny_dataset(), 0, seed=0, latent_dim=4, n_critic=1,
                                           num_classes=3, paired_labels=True)))
    for key in ("y_d", "y_g"):
        labels = batch[key].numpy()
        np.testing.assert_array_equal(labels[0::2][:len(labels) // 2], labels[1::2])
    config = tiny_conditional_config()
    trainer = GANTrainer(models.build_generator(config, seed=0),
                         models.build_discriminator(config, seed=0),
                         LossConfig(mode_seeking_weight=2.0), TrainConfig(steps=1, log_every=1))
    metrics = trainer.train(tiny_dataset())[-1]
    assert metrics["mode_seeking_loss"] > 0
    np.testing.assert_allclose(metrics["g_loss"], metrics["g_adv_loss"]
                               + metrics["mode_seeking_loss"], rtol=1e-5)
