"""Tests for tfgan_opt.pipeline.finetune: each compression transform followed by its recovery."""

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress import channels, prune
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import (ChannelPruneConfig, PruneConfig, QuantizeConfig)
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.models import surgery
from tfgan_opt.pipeline import finetune


def test_pruning_during_gan_training_reaches_target_in_generator_and_discriminator():
    generator, discriminator, model_config = testing.tiny_gan("dcgan")
    before = [w.copy() for w in generator.get_weights()]
    config = PruneConfig(target_sparsity=0.5, frequency=2, mode="during",
                         prune_discriminator=True)
    pruned_g, pruned_d = finetune.prune_gan(
        generator, discriminator, testing.fake_image_dataset(model_config), config,
        loss_config=testing.tiny_loss_config(), train_config=testing.tiny_train_config(steps=6))
    testing.assert_pruned_to(pruned_g, ["project", "up1", "up2"], 0.5, dense_names=["to_image"])
    testing.assert_pruned_to(pruned_d, ["down1", "down2"], 0.5, dense_names=["logits"])
    assert not prune.pruned_layers(pruned_g.network) and not prune.pruned_layers(pruned_d.network)
    for old, new in zip(before, generator.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_pruning_in_finetune_mode_reaches_target_after_recovery():
    generator, discriminator, model_config = testing.tiny_gan("mlp")
    config = PruneConfig(target_sparsity=0.6, initial_sparsity=0.2, frequency=1)
    # A frozen discriminator keeps the traced step small; test_recover covers the full loss.
    recovery = RecoveryConfig(steps=4, learning_rate=1e-3, train_discriminator=False,
                              feature_distill_weight=0.0)
    student, _ = finetune.prune_gan(
        generator, discriminator, testing.fake_image_dataset(model_config), config,
        loss_config=testing.tiny_loss_config(), recovery_config=recovery,
        train_config=testing.tiny_train_config(steps=4))
    testing.assert_pruned_to(student, ["dense1", "dense2", "dense3", "to_image"], 0.6)
    np.testing.assert_allclose(prune.sparsity_report(generator)["sparsity"], 0.0, atol=1e-6)


def test_channel_prune_gan_returns_a_folded_narrow_generator_fine_tuned_by_recovery():
    generator, discriminator, model_config = testing.tiny_gan("mlp")
    testing.randomize_batch_norm(generator.network)  # fresh BN is the identity
    generator.network.trainable = False  # as a saved EMA generator is
    before = [w.copy() for w in generator.get_weights()]
    student, _ = finetune.channel_prune_gan(
        generator, discriminator, testing.fake_image_dataset(model_config),
        ChannelPruneConfig(ratio=0.5), loss_config=testing.tiny_loss_config(),
        recovery_config=RecoveryConfig(steps=2, train_discriminator=False),
        train_config=testing.tiny_train_config(steps=2))
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in student.network.layers)
    assert channels.count_macs(student)["macs"] < 0.6 * channels.count_macs(generator)["macs"]
    untrained = fold_batch_norm(channels.channel_prune(generator, 0.5))
    z = generator.sample_latents(8)
    assert np.max(np.abs(student(z).numpy() - untrained(z).numpy())) > 1e-6
    for old, new in zip(before, generator.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("upsample", ["transpose", "nearest"])
def test_qat_training_keeps_pruned_conv_weights_at_zero(upsample):
    stripped, teacher, discriminator, model_config = testing.pruned_tiny_gan("dcgan",
                                                                             upsample=upsample)
    folded = fold_batch_norm(stripped)
    zeros_before = testing.zero_patterns(folded)
    qat = finetune.quantize_aware_finetune(
        stripped, discriminator, testing.fake_image_dataset(model_config),
        QuantizeConfig(steps=3, learning_rate=1e-2, preserve_sparsity=True), teacher=teacher,
        loss_config=testing.tiny_loss_config(),
        recovery_config=RecoveryConfig(train_discriminator=False, feature_distill_weight=0.0),
        train_config=testing.tiny_train_config())
    report = {row["layer"]: row["sparsity"] for row in prune.sparsity_report(qat)["layers"]}
    np.testing.assert_allclose([report[n] for n in ("project", "up1", "up2")], 0.5, atol=0.02)
    for layer in qat.network.layers:  # the raw kernel variables, not only their masked use
        name = surgery.inner_layer(layer).name
        if name in zeros_before:
            kernel = surgery.kernel_variable(layer).numpy()
            np.testing.assert_array_equal(kernel == 0, zeros_before[name])
            # It did train: the kept weights moved away from the float ones.
            assert not np.allclose(kernel, folded.network.get_layer(name).kernel.numpy())


@pytest.mark.parametrize("class_vectors", ["fixed", "learned"])
def test_conditional_qat_training_trains_the_fake_quantized_class_table(class_vectors):
    # Fixed class vectors are fixed in GAN training only: a student re-encodes the class.
    from tfgan_opt.models import build_discriminator, build_generator
    config = testing.tiny_conditional_config(class_vectors=class_vectors)
    teacher = fold_batch_norm(build_generator(config, seed=0))
    qat = finetune.quantize_aware_finetune(
        build_generator(config, seed=1), build_discriminator(config, seed=0),
        testing.tiny_dataset(), QuantizeConfig(steps=2, learning_rate=1e-2), teacher=teacher,
        loss_config=testing.tiny_loss_config(), recovery_config=RecoveryConfig(ema_decay=0.5),
        train_config=testing.tiny_train_config())
    wrapper = qat.network.get_layer("quant_class_embedding")  # EMA copy keeps the wrapper
    table = next(w for w in wrapper.trainable_weights if "embeddings" in w.name).numpy()
    start = build_generator(config, seed=1).network.get_layer("class_embedding").get_weights()[0]
    assert np.abs(table - start).max() > 1e-4  # it trained through the fake quantizer
    rows = wrapper(np.arange(3, dtype=np.int32), training=False).numpy()
    # On the 8-bit grid of the range the quantizer stored (the last training call's table).
    step = max(abs(float(w.numpy())) for w in wrapper.weights
               if w.name.split("/")[-1].startswith(("embeddings_min", "embeddings_max"))) / 127
    np.testing.assert_allclose(rows / step, np.round(rows / step), rtol=0, atol=1e-3)
