"""Tests for BN folding and sparsity-preserving quantization-aware training."""

import os

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress import prune
from tfgan_opt.compress import quantize
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.config import PruneConfig
from tfgan_opt.models import Generator, load_generator, save_network


@pytest.mark.parametrize("arch,upsample", [("dcgan", "transpose"), ("mlp", "transpose"),
                                           ("dcgan", "nearest"), ("dcgan", "bilinear")])
def test_fold_batch_norm_matches_the_original_in_inference_mode(arch, upsample):
    generator, _, _ = testing.tiny_gan(arch, upsample=upsample)
    testing.randomize_batch_norm(generator.network)
    folded = fold_batch_norm(generator)
    assert not [l for l in folded.network.layers if "BatchNormalization" in type(l).__name__]
    z = generator.sample_latents(16)
    np.testing.assert_allclose(folded(z).numpy(), generator(z, training=False).numpy(),
                               atol=1e-5)


def test_fold_batch_norm_rejects_a_wrapped_network():
    generator, _, _ = testing.tiny_gan("mlp")
    pruned = prune.apply_pruning(generator, PruneConfig(), total_steps=10)
    with pytest.raises(ValueError, match="strip_pruning"):
        fold_batch_norm(pruned)


@pytest.mark.parametrize("arch,upsample", [("dcgan", "transpose"), ("mlp", "transpose"),
                                           ("dcgan", "bilinear")])
def test_qat_generator_output_is_close_to_the_float_generator(arch, upsample):
    stripped, _, _, _ = testing.pruned_tiny_gan(arch, upsample=upsample)
    qat = quantize.apply_qat(stripped)
    z = stripped.sample_latents(32, seed=3)
    reference = stripped(z, training=False).numpy()
    scale = np.abs(reference).max()
    # About two 8-bit steps of the output range at most, on each of the outputs.
    np.testing.assert_allclose(qat(z).numpy() / scale, reference / scale, atol=0.05)
    np.testing.assert_allclose(prune.sparsity_report(qat)["sparsity"],
                               prune.sparsity_report(stripped)["sparsity"], atol=1e-9)


def test_qat_generator_round_trips_through_save_load_and_config(tmp_path):
    stripped, _, _, _ = testing.pruned_tiny_gan("dcgan")
    qat = quantize.apply_qat(stripped)
    z = stripped.sample_latents(8)
    path = os.path.join(tmp_path, "qat_generator.keras")
    save_network(qat, path)
    loaded = load_generator(path)
    np.testing.assert_allclose(loaded(z).numpy(), qat(z).numpy(), atol=1e-6)
    for name, zeros in testing.zero_patterns(qat).items():
        np.testing.assert_array_equal(testing.zero_patterns(loaded)[name], zeros)
    rebuilt = Generator.from_config(qat.get_config())
    rebuilt.set_weights(qat.get_weights())
    np.testing.assert_allclose(rebuilt(z).numpy(), qat(z).numpy(), atol=1e-6)


def test_conditional_qat_fake_quantizes_the_class_table_and_round_trips(tmp_path):
    import tensorflow as tf
    from tfgan_opt.models import build_generator
    generator = build_generator(testing.tiny_conditional_config(num_classes=4), seed=0)
    qat = quantize.apply_qat(generator)
    # Wrapped for QAT, and the int32 label input got no input quantizer (it would fail).
    wrapper = qat.network.get_layer("quant_class_embedding")
    assert [type(layer).__name__ for layer in qat.network.layers].count("InputQuantizeLayer") == 1
    labels = np.arange(4, dtype=np.int32)
    table_variable = next(w for w in wrapper.trainable_weights if "embeddings" in w.name)
    table = table_variable.numpy()
    rows = wrapper(labels, training=False).numpy()
    step = np.abs(table).max() / 127  # per tensor, symmetric, narrow range
    np.testing.assert_allclose(rows / step, np.round(rows / step), rtol=0, atol=1e-3)
    np.testing.assert_allclose(rows, table, rtol=0, atol=step / 2 + 1e-7)
    assert np.abs(rows - table).max() > 0  # on the grid, not the float table
    z, _ = qat.sample_latents(4)
    with tf.GradientTape() as tape:  # the straight-through estimator lets QAT train the table
        loss = tf.reduce_sum(qat((z, labels), training=True))
    assert np.abs(tape.gradient(loss, table_variable).numpy()).sum() > 0
    path = os.path.join(tmp_path, "conditional_qat.keras")
    save_network(qat, path)
    loaded = load_generator(path)
    np.testing.assert_allclose(loaded((z, labels)).numpy(), qat((z, labels)).numpy(), atol=1e-6)
