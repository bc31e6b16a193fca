"""How much of each layer to prune: per-layer sparsity from the generator's own sensitivity.

tfmot prunes every wrapped layer to one target. A generator's layers are not alike. In a DCGAN
the latent projection (a Dense layer) holds most of the weights, 76% of them in a channel-pruned
28x28 MNIST generator, but runs once per image; the 5x5 convolutions hold few weights and do all
the spatial work. Pruning each layer to the same 80% removes as large a share of a small,
sensitive convolution as of the big projection, while the file's size only counts weights.

`sensitivity_allocation` measures, for each prunable layer alone, how far the generator's output
moves (mean squared difference on seeded inputs) when that layer is magnitude-pruned to each
sparsity of a grid, then spends the overall budget greedily: each step of the grid goes to the
layer whose output moves least per weight removed (the per-layer sensitivity analysis of Han et
al. 2015, made automatic). The last step is interpolated, so the allocation removes exactly
``target`` of the weights of the layers it is given. `apply_pruning` gives each layer its own
tfmot schedule to that sparsity.
"""

import numpy as np

from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ConfigError

# Sparsities each layer is measured at; 0.95 is the most any one layer may lose.
GRID = tuple(round(0.05 * i, 2) for i in range(20))
CALIBRATION_INPUTS = 256


def magnitude_prune(kernel, sparsity):
    """``kernel`` with its ``round(sparsity * size)`` smallest-magnitude entries set to zero."""
    kernel = np.asarray(kernel)
    count = int(round(sparsity * kernel.size))
    pruned = kernel.copy().ravel()
    if count:
        pruned[np.argpartition(np.abs(pruned), count - 1)[:count]] = 0.0
    return pruned.reshape(kernel.shape)


def distortion_curves(network, layer_names, inputs, grid=GRID):
    """Output distortion of ``network`` with each named layer alone magnitude-pruned.

    Args:
      network: Functional keras.Model (not modified: a copy is measured).
      layer_names: layers with a ``kernel``.
      inputs: a batch the network takes (e.g. seeded latents).
      grid: sparsities to measure, increasing, starting at 0.

    Returns:
      {layer name: float64 array, one mean squared output difference per grid sparsity}.
    """
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    reference = copy(inputs, training=False).numpy()
    curves = {}
    for name in layer_names:
        kernel = copy.get_layer(name).kernel
        original = kernel.numpy()
        distortion = []
        for sparsity in grid:
            kernel.assign(magnitude_prune(original, sparsity))
            output = copy(inputs, training=False).numpy()
            distortion.append(float(np.mean((output - reference) ** 2)))
        kernel.assign(original)
        curves[name] = np.asarray(distortion)
    return curves


def allocate(curves, sizes, target, grid=GRID):
    """Per-layer sparsities that remove ``target`` of all weights at the least summed distortion.

    Greedy over the grid: the next step goes to the layer with the smallest distortion increase
    per weight it removes; the step that crosses the budget is taken only in part.

    Args:
      curves: {name: distortion per grid sparsity} (`distortion_curves`).
      sizes: {name: number of weights}.
      target: overall fraction of the weights to remove, in [0, max(grid)].

    Returns:
      {name: sparsity}, in the order of ``curves``.

    Raises:
      ConfigError: ``target`` is above what the grid allows.
    """
    if not 0 <= target <= grid[-1]:
        raise ConfigError(f"target_sparsity={target} is above {grid[-1]}, the most the "
                          "sensitivity allocation removes from any layer")
    budget = target * sum(sizes.values())
    level = {name: 0 for name in curves}
    sparsity = {name: 0.0 for name in curves}
    removed = 0.0

    def cost(name):
        i = level[name]
        return (curves[name][i + 1] - curves[name][i]) / (sizes[name] * (grid[i + 1] - grid[i]))

    while removed < budget - 1e-9:
        name = min((n for n in curves if level[n] + 1 < len(grid)), key=cost)
        i = level[name]
        step = sizes[name] * (grid[i + 1] - grid[i])
        fraction = min(1.0, (budget - removed) / step)
        sparsity[name] = grid[i] + fraction * (grid[i + 1] - grid[i])
        removed += fraction * step
        level[name] += 1
    return sparsity


def sensitivity_allocation(generator, layer_names, target, seed=0):
    """Per-layer sparsities of ``generator`` (`Generator`) for an overall ``target``.

    Returns:
      ({name: sparsity}, {name: distortion curve}) for the named layers.
    """
    network = generator.network
    inputs = generator.sample_latents(CALIBRATION_INPUTS, seed=seed)
    curves = distortion_curves(network, layer_names, inputs)
    sizes = {name: int(np.prod(network.get_layer(name).kernel.shape)) for name in layer_names}
    return allocate(curves, sizes, target), curves
