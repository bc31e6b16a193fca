"""Batch-norm folding: Dense/Conv2D/Conv2DTranspose followed by BatchNormalization -> one layer.

Folding freezes BN at its inference statistics, which is what a deployed generator computes. It
comes before pruning in ``finetune`` mode (the student then trains as it will run, and magnitudes
are those of the effective kernels) and before QAT (TFLite folds Conv2D/Dense -> BN itself but not
Conv2DTranspose -> BN, which would stay a float MUL/ADD pair in an int8 file).
"""

import numpy as np
from absl import logging

from tfgan_opt.core.compat import keras
from tfgan_opt.models.surgery import KERNEL_LAYER_TYPES, consumer_counts, rebuild_network

FOLDABLE_TYPES = KERNEL_LAYER_TYPES


def fold_batch_norm(generator):
    """Folds each BatchNormalization that follows a Dense/Conv2D/Conv2DTranspose into that layer.

    With BN in inference mode, y = gamma * (W x + b - mean) / sqrt(var + eps) + beta, i.e. a layer
    with kernel W * s and bias (b - mean) * s + beta, s = gamma / sqrt(var + eps) taken along the
    kernel's output-channel axis: the last axis for Dense and Conv2D, axis 2 for Conv2DTranspose
    (its kernel is [kh, kw, out, in]). The folded layer keeps the original's name; zero weights
    stay zero.

    Args:
      generator: `Generator` around a Functional or Sequential network of plain, unwrapped
        layers (a BN is folded when it alone reads a Dense/Conv2D/Conv2DTranspose output). The result equals it in inference mode only: folding freezes the BN
        statistics.

    Returns:
      A new `Generator` without the folded BatchNormalization layers; ``generator`` is unchanged.

    Raises:
      ValueError: the network is wrapped for pruning or quantization, or a BN follows a layer
        with an activation.
    """
    network = generator.network
    if any(isinstance(layer, keras.layers.Wrapper) for layer in network.layers):
        raise ValueError(f"{network.name} has wrapped layers; fold_batch_norm needs a plain "
                         f"network (strip_pruning it first, fold before apply_qat)")
    pairs = _foldable_pairs(network)
    folded_into = {bn: layer for layer, bn in pairs.items()}

    def make_layer(layer):
        if layer.name in folded_into:
            return None
        config = layer.get_config()
        if layer.name in pairs:
            config = dict(config, use_bias=True)
        return type(layer).from_config(config)

    folded = rebuild_network(network, make_layer)
    for layer in network.layers:
        if layer.name in folded_into or not layer.weights:
            continue
        weights = (_folded_weights(layer, network.get_layer(pairs[layer.name]))
                   if layer.name in pairs else layer.get_weights())
        folded.get_layer(layer.name).set_weights(weights)
    logging.info("Folded %s into the preceding layers of %s.",
                 ", ".join(folded_into) or "nothing", network.name)
    return generator.with_network(folded)


def _foldable_pairs(network):
    """Kernel layer name -> name of the BatchNormalization that alone reads its output."""
    readers = consumer_counts(network)
    pairs = {}
    for batch_norm in network.layers:
        if not isinstance(batch_norm, keras.layers.BatchNormalization) or len(
                batch_norm.inbound_nodes) != 1:
            continue
        history = batch_norm.input._keras_history
        layer = history.layer
        if (type(layer) in FOLDABLE_TYPES and len(layer.inbound_nodes) == 1
                and readers.get(id(batch_norm.input)) == 1):
            pairs[layer.name] = batch_norm.name
    return pairs


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
