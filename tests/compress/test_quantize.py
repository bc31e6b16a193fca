"""Tests for BN folding and sparsity-preserving quantization-aware training."""

import os

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress import prune
from tfgan_opt.compress import quantize
from tfgan_opt.core.config import PruneConfig, QuantizeConfig, RecoveryConfig
from tfgan_opt.models import Generator, load_generator, save_network, surgery
from tfgan_opt.pipeline import finetune


def _pruned_generator(arch, sparsity=0.5):
    """A stripped generator whose pruned layers hold exactly ``sparsity`` zeros, with real BN."""
    generator, discriminator, model_config = testing.tiny_gan(arch)
    testing.randomize_batch_norm(generator.network)
    pruned = prune.apply_pruning(generator, PruneConfig(target_sparsity=sparsity,
                                                        schedule="constant", frequency=1), 1)
    testing.apply_masks_once(pruned)
    return prune.strip_pruning(pruned), generator, discriminator, model_config


def _zero_patterns(model):
    return {row["layer"]: prune.effective_kernel(layer) == 0
            for layer, row in zip([l for l in model.network.layers
                                   if prune.effective_kernel(l) is not None],
                                  prune.sparsity_report(model)["layers"])}


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_fold_batch_norm_matches_the_original_in_inference_mode(arch):
    generator, _, _ = testing.tiny_gan(arch)
    testing.randomize_batch_norm(generator.network)
    folded = quantize.fold_batch_norm(generator)
    assert not [l for l in folded.network.layers if "BatchNormalization" in type(l).__name__]
    z = generator.sample_latents(16)
    np.testing.assert_allclose(folded(z).numpy(), generator(z, training=False).numpy(),
                               atol=1e-5)


def test_fold_batch_norm_rejects_a_wrapped_network():
    generator, _, _ = testing.tiny_gan("mlp")
    pruned = prune.apply_pruning(generator, PruneConfig(), total_steps=10)
    with pytest.raises(ValueError, match="strip_pruning"):
        quantize.fold_batch_norm(pruned)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_qat_generator_output_is_close_to_the_float_generator(arch):
    stripped, _, _, _ = _pruned_generator(arch)
    qat = quantize.apply_qat(stripped)
    z = stripped.sample_latents(32, seed=3)
    reference = stripped(z, training=False).numpy()
    scale = np.abs(reference).max()
    # About two 8-bit steps of the output range at most, on each of the outputs.
    np.testing.assert_allclose(qat(z).numpy() / scale, reference / scale, atol=0.05)
    np.testing.assert_allclose(prune.sparsity_report(qat)["sparsity"],
                               prune.sparsity_report(stripped)["sparsity"], atol=1e-9)


def test_qat_generator_round_trips_through_save_load_and_config(tmp_path):
    stripped, _, _, _ = _pruned_generator("dcgan")
    qat = quantize.apply_qat(stripped)
    z = stripped.sample_latents(8)
    path = os.path.join(tmp_path, "qat_generator.keras")
    save_network(qat, path)
    loaded = load_generator(path)
    np.testing.assert_allclose(loaded(z).numpy(), qat(z).numpy(), atol=1e-6)
    for name, zeros in _zero_patterns(qat).items():
        np.testing.assert_array_equal(_zero_patterns(loaded)[name], zeros)
    rebuilt = Generator.from_config(qat.get_config())
    rebuilt.set_weights(qat.get_weights())
    np.testing.assert_allclose(rebuilt(z).numpy(), qat(z).numpy(), atol=1e-6)


def test_qat_training_keeps_pruned_conv_transpose_weights_at_zero():
    stripped, teacher, discriminator, model_config = _pruned_generator("dcgan")
    folded = quantize.fold_batch_norm(stripped)
    zeros_before = _zero_patterns(folded)
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
