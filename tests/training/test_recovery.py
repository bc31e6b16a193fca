"""Tests for tfgan_opt.recover: distillation narrows the student-teacher gap; weights; freezing."""

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress import prune
from tfgan_opt.training import recovery
from tfgan_opt.core.config import (PruneConfig)
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.compress.fold import fold_batch_norm


def test_recovery_lowers_distillation_loss_with_frozen_discriminator():
    teacher, discriminator, model_config = testing.tiny_gan("mlp")
    config = PruneConfig(target_sparsity=0.5, schedule="constant", frequency=1)
    student = prune.apply_pruning(fold_batch_norm(teacher), config, total_steps=20)
    callbacks = prune.pruning_callbacks(student)
    z = teacher.sample_latents(64, seed=7)
    testing.apply_masks_once(student)  # the 50% masks, before measuring the starting gap
    before = recovery.distillation_l1(student, teacher, z)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    discriminator_weights = [w.copy() for w in discriminator.get_weights()]
    config = RecoveryConfig(steps=20, learning_rate=3e-3, distill_weight=1.0,
                            feature_distill_weight=0.5, adversarial_weight=0.25,
                            train_discriminator=False)
    trainer = recovery.RecoveryTrainer(student, teacher, discriminator, config,
                                      testing.tiny_loss_config(),
                                      train_config=testing.tiny_train_config(log_every=1),
                                      callbacks=callbacks)
    history = trainer.train(testing.fake_image_dataset(model_config))
    after = recovery.distillation_l1(student, teacher, z)
    assert 0.0 < after < 0.8 * before, (before, after)
    # The adversarial term is scaled and the distillation terms are added, each step.
    for row in history:
        np.testing.assert_allclose(
            row["g_loss"], 0.25 * row["g_adv_loss"] + row["distill_loss"]
            + row["feature_distill_loss"], rtol=1e-5)
    assert "d_loss" not in history[-1]
    for old, new in zip(teacher_weights + discriminator_weights,
                        teacher.get_weights() + discriminator.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(prune.sparsity_report(student)["sparsity"], 0.5, atol=0.02)


def test_recovery_rejects_a_teacher_of_another_shape():
    student, discriminator, _ = testing.tiny_gan("mlp")
    teacher, _, _ = testing.tiny_gan("mlp", latent_dim=16)
    with pytest.raises(ValueError, match="teacher maps 16"):
        recovery.RecoveryTrainer(student, teacher, discriminator, RecoveryConfig(),
                                testing.tiny_loss_config())


def test_recover_with_zero_steps_returns_the_student_untrained():
    student, discriminator, model_config = testing.tiny_gan("mlp")
    result = recovery.recover(student, student, discriminator,
                             testing.fake_image_dataset(model_config), RecoveryConfig(steps=0),
                             testing.tiny_loss_config())
    assert result is student


@pytest.mark.parametrize("layer_distill_weight", [0.0, 1.0])
def test_distillation_only_recovery_never_runs_the_discriminator(layer_distill_weight):
    teacher, _, model_config = testing.tiny_gan("dcgan", width=8)
    # A discriminator for 16x16 images: a call on the 8x8 fakes would fail.
    _, discriminator, _ = testing.tiny_gan("dcgan", width=8, image_size=16)
    student = fold_batch_norm(teacher)
    rng = np.random.default_rng(0)
    student.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(np.float32)
                         for w in student.get_weights()])
    z = teacher.sample_latents(64, seed=7)
    before = recovery.distillation_l1(student, teacher, z)
    discriminator_weights = [w.copy() for w in discriminator.get_weights()]
    config = RecoveryConfig(steps=12, learning_rate=3e-3, distill_weight=1.0,
                            layer_distill_weight=layer_distill_weight).distillation_only()
    trainer = recovery.RecoveryTrainer(student, teacher, discriminator, config,
                                      testing.tiny_loss_config(),
                                      train_config=testing.tiny_train_config(log_every=1))
    history = trainer.train(testing.fake_image_dataset(model_config))
    assert 0.0 < recovery.distillation_l1(student, teacher, z) < 0.8 * before
    for row in history:  # only distillation terms
        assert not {"d_loss", "g_adv_loss", "feature_distill_loss"} & set(row), row
        np.testing.assert_allclose(
            row["g_loss"], row["distill_loss"] + row.get("layer_distill_loss", 0.0), rtol=1e-5)
    for old, new in zip(discriminator_weights, discriminator.get_weights()):
        np.testing.assert_array_equal(old, new)
