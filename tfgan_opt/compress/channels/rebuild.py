"""Removing channels from a traced network (`depgraph.ChannelGraph`), and the references a
narrowed network is checked against.

`narrow_network` rebuilds the network from the same standard layers (same names, narrower
configs) and copies the kept weights. `mask_network` is the reference it must match: the original
network with the removed channels multiplied by zero after every layer (the activations, not the
weights, so it holds whatever the layers between producer and consumer compute from a zero);
`zero_weights` is the weight-level mask the importance criteria can score.
"""

import numpy as np
import tensorflow as tf

from tfgan_opt.compress.channels.depgraph import producer_axes
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ConfigError

L = keras.layers


def _take(array, index, axis):
    return array if index is None else np.take(array, index, axis=axis)


def narrowed_config(layer, cut_in, cut_out):
    """``layer``'s config with ``len(cut_out)`` output channels where the layer sets them."""
    config = layer.get_config()
    if cut_out is None:
        return config
    if type(layer) is L.Dense:
        config["units"] = len(cut_out)
    elif producer_axes(layer) or type(layer) is L.SeparableConv2D:
        config["filters"] = len(cut_out)
    elif type(layer) is L.Reshape:
        config["target_shape"] = tuple(config["target_shape"][:-1]) + (len(cut_out),)
    return config


def narrowed_weights(layer, cut_in, cut_out):
    """``layer``'s weights with only the kept input (``cut_in``) and output (``cut_out``) units."""
    weights = layer.get_weights()
    if not weights or (cut_in is None and cut_out is None):
        return weights
    axes = producer_axes(layer)
    if axes:
        kernel = _take(_take(weights[0], cut_in, axes[0]), cut_out, axes[1])
        return [kernel] + [_take(v, cut_out, 0) for v in weights[1:]]
    if type(layer) is L.SeparableConv2D:
        depthwise = _take(weights[0], cut_in, 2)
        pointwise = _take(_take(weights[1], cut_in, 2), cut_out, 3)
        return [depthwise, pointwise] + [_take(v, cut_out, 0) for v in weights[2:]]
    if type(layer) is L.DepthwiseConv2D:
        return [_take(weights[0], cut_in, 2)] + [_take(v, cut_in, 0) for v in weights[1:]]
    if type(layer) is L.BatchNormalization:
        return [_take(w, cut_in, 0) for w in weights]
    if type(layer) is L.PReLU:
        return [w if w.shape[-1] == 1 else _take(w, cut_in, w.ndim - 1) for w in weights]
    return weights  # e.g. LayerNormalization over other axes than channels


def _clone(network, make_layer):
    """Clones ``network`` with ``make_layer(original layer) -> new layer`` (same graph)."""
    return keras.models.clone_model(network, clone_function=make_layer)


def narrow_network(graph, keep):
    """The network of ``graph`` with only ``keep``'s channels (same layer names and types).

    Args:
      graph: `ChannelGraph` of the network.
      keep: dict group producer -> channel indices to keep (validated by the caller).

    Returns:
      A new keras.Model (Functional, or Sequential for a Sequential network).
    """
    network = graph.network
    cuts = {layer.name: (graph.kept_units(layer.name, "in", keep),
                         graph.kept_units(layer.name, "out", keep)) for layer in network.layers}
    narrowed = _clone(network, lambda layer: type(layer).from_config(
        narrowed_config(layer, *cuts[layer.name])))
    for layer in network.layers:
        if layer.weights:
            narrowed.get_layer(layer.name).set_weights(narrowed_weights(layer,
                                                                        *cuts[layer.name]))
    return narrowed


class _MaskedOutput(L.Layer):
    """Calls a layer, then zeroes the output channels a 0/1 ``mask`` [C] removes (a reference
    model for tests and checks; never saved)."""

    def __init__(self, layer, mask, **kwargs):
        super().__init__(name=layer.name, **kwargs)
        self.inner = layer
        self.mask = tf.constant(mask, tf.float32)

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training) * self.mask


def mask_network(graph, keep):
    """A same-width copy of ``graph``'s network whose removed channels are zero after every
    layer: in inference mode, what `narrow_network(graph, keep)` must compute.

    Returns:
      A Functional keras.Model (not meant to be saved).
    """
    network = graph.network

    def make_layer(layer):
        fresh = type(layer).from_config(layer.get_config())
        kept = graph.kept_units(layer.name, "out", keep)
        if kept is None:
            return fresh
        mask = np.zeros(layer.output_shape[-1], np.float32)
        mask[kept] = 1.0
        return _MaskedOutput(fresh, mask)

    masked = _clone(network, make_layer)
    for layer in network.layers:
        if layer.weights:
            target = masked.get_layer(layer.name)
            getattr(target, "inner", target).set_weights(layer.get_weights())
    return masked


def zero_weights(network, groups, keep):
    """Zeroes, in place, the weights that make the channels not in ``keep`` nonzero: the
    producers' kernel slices and biases, and BatchNormalization gamma, beta and moving mean on
    those channels (the variance stays positive). Exact zeros downstream need activations with
    f(0) = 0 (ReLU, LeakyReLU, tanh, ...)."""
    for group in groups:
        if group.producer not in keep:
            continue
        removed = np.setdiff1d(np.arange(group.channels), keep[group.producer])
        for member in group.members:
            units = member.units[np.isin(member.channels, removed)]
            layer = network.get_layer(member.layer)
            weights = layer.get_weights()
            axes = producer_axes(layer)
            if member.side == "out" and (axes or type(layer) is L.SeparableConv2D):
                kernel = len(weights) - 1 - int(layer.use_bias)
                index = [slice(None)] * weights[kernel].ndim
                index[axes[1] if axes else 3] = units
                weights[kernel][tuple(index)] = 0.0
                if layer.use_bias:
                    weights[-1][units] = 0.0
            elif member.side == "in" and type(layer) is L.BatchNormalization:
                for i in range(len(weights) - 1):
                    weights[i][units] = 0.0
            elif member.side == "in" and type(layer) is L.DepthwiseConv2D and layer.use_bias:
                weights[-1][units] = 0.0
            layer.set_weights(weights)


def check_narrowed(narrowed, masked, inputs, name):
    """Raises `ConfigError` unless ``narrowed`` computes ``masked`` on ``inputs`` (inference
    mode), within float32 rounding."""
    a = np.asarray(narrowed(inputs, training=False))
    b = np.asarray(masked(inputs, training=False))
    error = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
    scale = max(1.0, float(np.max(np.abs(b))))
    if not error <= 1e-4 * scale:
        raise ConfigError(f"channel pruning of {name} changed what the kept channels compute "
                          f"(max difference {error:.3g} from the masked network); a layer has "
                          f"no correct rule yet, please report it")
    return error
