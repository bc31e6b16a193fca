"""Batch-norm folding: Dense/Conv2D/Conv2DTranspose followed by BatchNormalization -> one layer.

Folding freezes BN at its inference statistics, which is what a deployed generator computes. It
comes before pruning in ``finetune`` mode (the student then trains as it will run, and magnitudes
are those of the effective kernels) and before QAT (TFLite folds Conv2D/Dense -> BN itself but not
Conv2DTranspose -> BN, which would stay a float MUL/ADD pair in an int8 file).
"""

import numpy as np
from absl import logging

from tfgan_opt.core.compat import keras
from tfgan_opt.models.surgery import KERNEL_LAYER_TYPES

FOLDABLE_TYPES = KERNEL_LAYER_TYPES


def fold_batch_norm(generator):
    """Folds each BatchNormalization that follows a Dense/Conv2D/Conv2DTranspose into that layer.

    With BN in inference mode, y = gamma * (W x + b - mean) / sqrt(var + eps) + beta, i.e. a layer
    with kernel W * s and bias (b - mean) * s + beta, s = gamma / sqrt(var + eps) taken along the
    kernel's output-channel axis: the last axis for Dense and Conv2D, axis 2 for Conv2DTranspose
    (its kernel is [kh, kw, out, in]). The folded layer keeps the original's name; zero weights
    stay zero.

    Args:
      generator: `Generator` whose network is a chain (each layer feeds only the next) of plain,
        unwrapped layers. The result equals it in inference mode only: folding freezes the BN
        statistics.

    Returns:
      A new `Generator` without the folded BatchNormalization layers; ``generator`` is unchanged.

    Raises:
      ValueError: the network is not a chain, or is wrapped for pruning or quantization.
    """
    network = generator.network
    _check_foldable(network)
    layers = network.layers
    inputs = keras.Input(batch_shape=network.input_shape, name=layers[0].name)
    x, i, folded = inputs, 1, []
    while i < len(layers):
        layer = layers[i]
        follower = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, FOLDABLE_TYPES) and isinstance(
                follower, keras.layers.BatchNormalization):
            config = dict(layer.get_config(), use_bias=True)
            weights = _folded_weights(layer, follower)
            folded.append(follower.name)
            i += 2
        else:
            config, weights = layer.get_config(), layer.get_weights()
            i += 1
        new_layer = type(layer).from_config(config)
        x = new_layer(x)
        new_layer.set_weights(weights)
    logging.info("Folded %s into the preceding layers of %s.", ", ".join(folded) or "nothing",
                 network.name)
    return generator.with_network(keras.Model(inputs, x, name=network.name))


def _check_foldable(network):
    if any(isinstance(layer, keras.layers.Wrapper) for layer in network.layers):
        raise ValueError(f"{network.name} has wrapped layers; fold_batch_norm needs a plain "
                         f"network (strip_pruning it first, fold before apply_qat)")
    names = [layer["name"] for layer in network.get_config()["layers"]]
    for previous, layer in zip(names, network.get_config()["layers"][1:]):
        inbound = [node[0] for nodes in layer["inbound_nodes"] for node in nodes]
        if inbound != [previous]:
            raise ValueError(f"fold_batch_norm needs a chain network, but layer {layer['name']} "
                             f"of {network.name} takes {inbound}, not [{previous!r}]")


def _folded_weights(layer, batch_norm):
    """[kernel * s, (bias - mean) * s + beta] of ``layer`` followed by ``batch_norm``."""
    if layer.get_config().get("activation", "linear") != "linear":
        raise ValueError(f"cannot fold {batch_norm.name}: {layer.name} has an activation")
    channels = layer.kernel.shape[2 if isinstance(layer, keras.layers.Conv2DTranspose) else -1]
    if list(batch_norm.axis) != [len(batch_norm.input_shape) - 1]:
        raise ValueError(f"cannot fold {batch_norm.name}: it normalizes axis {batch_norm.axis}, "
                         f"not the channels of {layer.name}")
    gamma = batch_norm.gamma.numpy() if batch_norm.scale else np.ones(channels, np.float32)
    beta = batch_norm.beta.numpy() if batch_norm.center else np.zeros(channels, np.float32)
    mean, variance = batch_norm.moving_mean.numpy(), batch_norm.moving_variance.numpy()
    scale = gamma / np.sqrt(variance + batch_norm.epsilon)
    kernel = layer.kernel.numpy()
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel = kernel * scale[None, None, :, None]
    else:
        kernel = kernel * scale
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(channels, np.float32)
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]
