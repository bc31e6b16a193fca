"""Per-layer sparsity from sensitivity (compress/allocation.py) and its use by apply_pruning."""

import numpy as np
import pytest

from tfgan_opt import PruneConfig
from tfgan_opt.compress import allocation, prune
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.testing import (apply_masks_once, layer_sparsity, randomize_batch_norm,
                               tiny_gan)


def test_magnitude_prune_zeroes_exactly_the_smallest_entries():
    kernel = np.array([[0.5, -0.1], [0.3, -0.9], [0.05, 0.2]])
    np.testing.assert_array_equal(allocation.magnitude_prune(kernel, 0.5),
                                  [[0.5, 0.0], [0.3, -0.9], [0.0, 0.0]])
    np.testing.assert_array_equal(allocation.magnitude_prune(kernel, 0.0), kernel)


def test_allocate_spends_the_budget_on_the_least_sensitive_weights():
    grid = (0.0, 0.5, 1.0)
    # "big" barely moves the output, "small" moves it a lot: the budget goes to "big" first.
    curves = {"big": np.array([0.0, 1.0, 3.0]), "small": np.array([0.0, 10.0, 30.0])}
    sizes = {"big": 300, "small": 100}
    # 40% of 400 weights = 160: big to 0.5 (150 weights at 1/150 each), then its next step
    # (2/150 per weight) is still cheaper than small's (10/50): 10 more weights of big.
    targets = allocation.allocate(curves, sizes, 0.4, grid)
    np.testing.assert_allclose(targets["big"], 160 / 300)
    assert targets["small"] == 0.0
    removed = sum(targets[n] * sizes[n] for n in sizes)
    np.testing.assert_allclose(removed, 0.4 * 400)


def test_allocate_goes_to_the_other_layer_when_it_is_cheaper_per_weight():
    grid = (0.0, 0.5, 1.0)
    curves = {"a": np.array([0.0, 1.0, 100.0]), "b": np.array([0.0, 2.0, 4.0])}
    targets = allocation.allocate(curves, {"a": 100, "b": 100}, 0.75, grid)
    # a's first half costs 1/50, b's halves 2/50 each, a's second half 99/50: a 0.5, b 1.0.
    np.testing.assert_allclose([targets["a"], targets["b"]], [0.5, 1.0])


def test_allocate_refuses_a_target_the_grid_cannot_reach():
    with pytest.raises(ConfigError, match="target_sparsity=0.97"):
        allocation.allocate({"a": np.zeros(3)}, {"a": 10}, 0.97, (0.0, 0.5, 0.95))


def test_distortion_curves_start_at_zero_grow_and_leave_the_network_untouched():
    generator, _, _ = tiny_gan("dcgan")
    randomize_batch_norm(generator.network)
    before = [w.copy() for w in generator.network.get_weights()]
    names = prune.prunable_layer_names(generator.network)
    curves = allocation.distortion_curves(generator.network, names,
                                          generator.sample_latents(16), grid=(0.0, 0.5, 0.95))
    for name in names:
        assert curves[name][0] == 0.0
        assert curves[name][2] > curves[name][1] > 0.0
    for old, new in zip(before, generator.network.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_sensitivity_pruning_reaches_the_overall_target_with_unequal_layers():
    generator, _, _ = tiny_gan("dcgan")
    randomize_batch_norm(generator.network)
    config = PruneConfig(target_sparsity=0.6, schedule="constant", frequency=1,
                         allocation="sensitivity")
    pruned = prune.apply_pruning(generator, config, 1)
    apply_masks_once(pruned)
    stripped = prune.strip_pruning(pruned)
    sparsity = layer_sparsity(stripped)
    names = prune.prunable_layer_names(generator.network)
    sizes = {n: generator.network.get_layer(n).kernel.numpy().size for n in names}
    overall = sum(sparsity[n] * sizes[n] for n in names) / sum(sizes.values())
    np.testing.assert_allclose(overall, 0.6, atol=0.01)
    expected, _ = allocation.sensitivity_allocation(generator, names, 0.6)
    np.testing.assert_allclose([sparsity[n] for n in names], [expected[n] for n in names],
                               atol=0.02)
    assert max(expected.values()) - min(expected.values()) > 0.05  # not uniform in disguise


def test_sensitivity_allocation_is_refused_where_it_cannot_measure():
    with pytest.raises(ConfigError, match="finetune"):
        PruneConfig(allocation="sensitivity", mode="during")
    with pytest.raises(ConfigError, match="block_m_by_n"):
        PruneConfig(allocation="sensitivity", block_m_by_n=(2, 4))
    _, discriminator, _ = tiny_gan("dcgan")
    with pytest.raises(ConfigError, match="not a Generator"):
        prune.apply_pruning(discriminator, PruneConfig(allocation="sensitivity"), 10)


def test_a_recorded_prune_section_without_allocation_reads_as_uniform():
    recorded = PruneConfig().to_dict()
    recorded.pop("allocation")
    assert PruneConfig.from_dict(recorded).allocation == "uniform"
