"""Tests for tfgan_opt.training.feature_distill: inner-feature distillation across widths."""

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt import testing
from tfgan_opt.compress.channels.narrow import narrow_with_config
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.config import ChannelPruneConfig
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.training import feature_distill, recovery


def _narrow_student(teacher, discriminator, ratio=0.5):
    student = fold_batch_norm(narrow_with_config(teacher, ChannelPruneConfig(ratio=ratio),
                                                 discriminator))
    student.network.trainable = True
    return student


def test_feature_layers_of_a_dcgan_are_its_spatial_feature_maps():
    teacher, _, _ = testing.tiny_gan("dcgan", width=8)
    assert feature_distill.feature_layer_names(teacher.network) == ["reshape", "up1_act",
                                                                    "up2_act"]
    mlp, _, _ = testing.tiny_gan("mlp")
    names = feature_distill.feature_layer_names(mlp.network)
    assert names and all(n.endswith("_act") for n in names)


def test_adapters_map_narrow_widths_to_the_teacher_and_start_from_least_squares():
    teacher, discriminator, _ = testing.tiny_gan("dcgan", width=8)
    student = _narrow_student(teacher, discriminator)
    distiller = feature_distill.FeatureDistiller(student, teacher)
    shapes = [tuple(a.kernel.shape) for a in distiller.adapters]
    assert shapes == [(1, 1, 16, 32), (1, 1, 8, 16), (1, 1, 4, 8)]  # student -> teacher widths
    z = teacher.sample_latents(256, seed=0)  # the calibration latents
    _, s = distiller.student_outputs(z, training=False)
    _, t = distiller.teacher_outputs(z)
    fitted = distiller.per_layer_losses(s, t)
    # Least squares beats the zero map and a random perturbation of the fitted map.
    for name, adapter, s_i, t_i in zip(distiller.names, distiller.adapters, s, t):
        zero_map = float(tf.reduce_mean(tf.square(t_i)))
        assert float(tf.reduce_mean(fitted[name])) < zero_map
        kernel, bias = adapter.get_weights()
        adapter.set_weights([kernel + 0.05 * np.random.default_rng(0).standard_normal(
            kernel.shape).astype(np.float32), bias])
        perturbed = distiller.per_layer_losses(s, t)[name]
        assert float(tf.reduce_mean(perturbed)) > float(tf.reduce_mean(fitted[name]))
        adapter.set_weights([kernel, bias])


def test_same_widths_need_no_adapter_and_a_copy_has_zero_feature_loss():
    teacher, _, _ = testing.tiny_gan("dcgan", width=8)
    student = fold_batch_norm(teacher)  # same function, no BN layers, same activation names
    distiller = feature_distill.FeatureDistiller(student, teacher,
                                                 layer_weights={"up1_act": 2.0, "up2_act": 0.5})
    assert distiller.adapters == [None, None] and distiller.adapter_variables == []
    z = teacher.sample_latents(16, seed=3)
    _, s = distiller.student_outputs(z, training=False)
    _, t = distiller.teacher_outputs(z)
    np.testing.assert_allclose(distiller.loss(s, t).numpy(), np.zeros(16), atol=1e-6)
    # The per-layer weights scale each layer's term.
    shifted = [s[0] + 1.0, s[1]]
    np.testing.assert_allclose(distiller.loss(shifted, t).numpy(), np.full(16, 2.0), rtol=1e-4)


def test_a_layer_missing_from_the_student_is_refused():
    teacher, _, _ = testing.tiny_gan("dcgan", width=8)
    with pytest.raises(ConfigError, match="'nope' is not in both"):
        feature_distill.FeatureDistiller(teacher, teacher, layer_weights={"nope": 1.0})


def test_recovery_with_feature_distillation_trains_student_and_adapters_not_the_teacher():
    teacher, discriminator, model_config = testing.tiny_gan("dcgan", width=8)
    student = _narrow_student(teacher, discriminator)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    config = RecoveryConfig(steps=8, learning_rate=2e-3, distill_weight=1.0,
                            feature_distill_weight=0.5, adversarial_weight=0.25,
                            layer_distill_weight=3.0, train_discriminator=False)
    trainer = recovery.RecoveryTrainer(student, teacher, discriminator, config,
                                       testing.tiny_loss_config(),
                                       train_config=testing.tiny_train_config(log_every=1))
    adapters = [v.numpy().copy() for v in trainer.feature_distiller.adapter_variables]
    z = teacher.sample_latents(64, seed=5)
    distiller = trainer.feature_distiller
    before = float(tf.reduce_mean(distiller.loss(distiller.student_outputs(z, False)[1],
                                                 distiller.teacher_outputs(z)[1])))
    history = trainer.train(testing.fake_image_dataset(model_config))
    after = float(tf.reduce_mean(distiller.loss(distiller.student_outputs(z, False)[1],
                                                distiller.teacher_outputs(z)[1])))
    assert after < before, (before, after)
    for row in history:  # the generator loss is exactly the weighted sum of its terms
        np.testing.assert_allclose(row["g_loss"], 0.25 * row["g_adv_loss"] + row["distill_loss"]
                                   + row["feature_distill_loss"] + row["layer_distill_loss"],
                                   rtol=1e-5)
    assert any(not np.allclose(a, v.numpy())
               for a, v in zip(adapters, trainer.feature_distiller.adapter_variables))
    for old, new in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(old, new)
    # The exported student is the plain narrow generator: no adapter inside it.
    assert not any(layer.name.startswith("adapt_") for layer in student.network.layers)
