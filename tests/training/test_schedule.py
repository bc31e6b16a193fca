"""Tests for tfgan_opt.training.schedule: damage-tied steps, learning-rate decay, student EMA."""

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.training import recovery, schedule


def test_damage_steps_grow_with_the_fraction_removed():
    config = RecoveryConfig(steps=100, steps_per_removed=1000)
    assert [schedule.damage_steps(config, r) for r in (0.0, 0.25, 0.75, 1.0)] == [100, 350, 850,
                                                                                  1100]
    assert schedule.damage_steps(RecoveryConfig(steps=100), 0.75) == 100  # the old fixed count
    with pytest.raises(ConfigError, match="removed=1.5"):
        schedule.damage_steps(config, 1.5)


def test_cosine_learning_rate_goes_from_base_to_the_final_fraction():
    rates = [schedule.learning_rate_at("cosine", 1e-3, step, 11, 0.1) for step in range(11)]
    np.testing.assert_allclose(rates[0], 1e-3)
    np.testing.assert_allclose(rates[5], 1e-3 * (0.1 + 0.9 * 0.5))
    np.testing.assert_allclose(rates[-1], 1e-4)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    np.testing.assert_allclose(schedule.learning_rate_at("constant", 1e-3, 7, 11), 1e-3)


def test_recovery_decays_the_learning_rate_and_ships_the_student_ema():
    teacher, discriminator, model_config = testing.tiny_gan("mlp")
    student = fold_batch_norm(teacher)
    config = RecoveryConfig(steps=6, learning_rate=1e-3, lr_schedule="cosine",
                            final_lr_fraction=0.2, ema_decay=0.5)
    trainer = recovery.RecoveryTrainer(student, teacher, discriminator, config,
                                       testing.tiny_loss_config(),
                                       train_config=testing.tiny_train_config())
    assert trainer.config.steps == 6 and trainer.config.ema_decay == 0.5
    trainer.train(testing.fake_image_dataset(model_config))
    # The last step ran at the final rate: the callback set it before that step.
    np.testing.assert_allclose(trainer.generator_optimizer.learning_rate.numpy(), 2e-4, rtol=1e-5)
    np.testing.assert_allclose(trainer.discriminator_optimizer.learning_rate.numpy(), 2e-4,
                               rtol=1e-5)
    final = trainer.final_generator()
    assert final is not trainer.generator  # the EMA copy is what recovery returns
    differs = [not np.allclose(a, b) for a, b in zip(final.network.get_weights(),
                                                     student.network.get_weights())]
    assert any(differs)


def test_the_old_recovery_config_keeps_a_constant_rate_and_no_ema():
    teacher, discriminator, _ = testing.tiny_gan("mlp")
    trainer = recovery.RecoveryTrainer(fold_batch_norm(teacher), teacher, discriminator,
                                       RecoveryConfig(steps=3), testing.tiny_loss_config())
    assert trainer.ema_network is None and trainer.feature_distiller is None
    assert not any(isinstance(c, schedule.LearningRateDecay) for c in trainer.callbacks)
