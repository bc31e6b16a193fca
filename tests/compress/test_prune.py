"""Tests for tfgan_opt.compress.prune: schedules, wrapping, stripping, m-by-n, sparsity reports."""

import numpy as np
import pytest

from tfgan_opt import testing
from tfgan_opt.compress import prune
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import PruneConfig
from tfgan_opt.core.errors import ConfigError


def test_polynomial_schedule_reaches_target_on_the_last_aligned_step():
    config = PruneConfig(target_sparsity=0.5, frequency=3, schedule="polynomial")
    schedule = prune.make_pruning_schedule(config, total_steps=10)
    should_prune, sparsity = schedule(9)
    assert bool(should_prune)
    np.testing.assert_allclose(float(sparsity), 0.5, atol=1e-6)
    assert not bool(schedule(10)[0])


def test_schedule_that_cannot_finish_in_the_run_raises_config_error():
    with pytest.raises(ConfigError, match="end_step=20"):
        prune.make_pruning_schedule(PruneConfig(end_step=20), total_steps=10)
    with pytest.raises(ConfigError, match="begin_step=10"):
        prune.make_pruning_schedule(PruneConfig(begin_step=10), total_steps=10)


def test_apply_pruning_skips_small_output_layer_and_keeps_original_dense():
    generator, _, _ = testing.tiny_gan("dcgan")
    before = [w.copy() for w in generator.get_weights()]
    pruned = prune.apply_pruning(generator, PruneConfig(target_sparsity=0.5, schedule="constant",
                                                        frequency=1), total_steps=1)
    testing.apply_masks_once(pruned)
    testing.assert_pruned_to(pruned, ["project", "up1", "up2"], 0.5, dense_names=["to_image"])
    assert type(pruned) is type(generator)
    for old, new in zip(before, generator.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(prune.sparsity_report(generator)["sparsity"], 0.0, atol=1e-6)


def test_strip_pruning_keeps_sparsity_and_outputs():
    generator, _, _ = testing.tiny_gan("mlp")
    pruned = prune.apply_pruning(generator, PruneConfig(target_sparsity=0.7, schedule="constant",
                                                        frequency=1), total_steps=1)
    testing.apply_masks_once(pruned)
    stripped = prune.strip_pruning(pruned)
    assert not prune.pruned_layers(stripped.network)
    assert [row["layer"] for row in prune.sparsity_report(stripped)["layers"]] == [
        "dense1", "dense2", "dense3", "to_image"]
    np.testing.assert_allclose(prune.sparsity_report(stripped)["sparsity"],
                               prune.sparsity_report(pruned)["sparsity"], atol=1e-9)
    testing.assert_pruned_to(stripped, ["dense1", "dense2", "dense3", "to_image"], 0.7)
    z = generator.sample_latents(4)
    np.testing.assert_allclose(stripped(z).numpy(), pruned(z).numpy(), atol=1e-6)


def test_m_by_n_pruning_leaves_at_most_m_nonzeros_in_every_group_of_n():
    generator, _, _ = testing.tiny_gan("mlp")
    pruned = prune.apply_pruning(generator, PruneConfig(block_m_by_n=(2, 4), frequency=1),
                                 total_steps=1)
    testing.apply_masks_once(pruned)
    for layer in prune.strip_pruning(pruned).network.layers:
        if isinstance(layer, keras.layers.Dense):
            # TFLite stores Dense kernels as [out, in]; the groups run along `in`.
            groups = layer.kernel.numpy().T.reshape(-1, 4)
            np.testing.assert_array_equal(np.count_nonzero(groups, axis=1), 2)


def test_m_by_n_on_conv_transpose_raises_config_error():
    generator, _, _ = testing.tiny_gan("dcgan")
    with pytest.raises(ConfigError, match="up1, up2"):
        prune.apply_pruning(generator, PruneConfig(block_m_by_n=(2, 4)), total_steps=10)


def test_pruning_an_already_pruned_model_raises():
    generator, _, _ = testing.tiny_gan("mlp")
    pruned = prune.apply_pruning(generator, PruneConfig(), total_steps=10)
    with pytest.raises(ValueError, match="strip_pruning"):
        prune.apply_pruning(pruned, PruneConfig(), total_steps=10)
