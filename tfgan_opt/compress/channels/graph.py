"""The channel structure of a chain generator network, and its multiply-accumulate counts.

A *channel group* is a Dense/Conv2D/Conv2DTranspose (the producer) whose output reaches the next
kernel layer (the consumer) through per-channel layers only (BatchNormalization, activations,
Dropout, UpSampling2D) and at most one Reshape of a flat Dense output to (s, s, C). Removing channel c of a group
deletes the producer's output c (kernel slice, bias, BN gamma, beta and moving statistics) and the
consumer's input c. Dense -> Reshape((s, s, C)) is row-major, so channel c of the map is Dense
units {p * C + c : p < s * s}. A producer whose output reaches the network output (the image) has
no group: its channels are not prunable.
"""

import dataclasses

import numpy as np

from tfgan_opt.core.compat import keras
from tfgan_opt.models.surgery import KERNEL_LAYER_TYPES, inner_layer, kernel_variable

# Exact types (not isinstance): Conv2DTranspose and DepthwiseConv2D subclass Conv2D.
KERNEL_TYPES = KERNEL_LAYER_TYPES
# Layers that act on each channel separately, so a removed channel can simply be skipped there.
# UpSampling2D (resize-convolution generators) repeats or interpolates each channel on its own.
PER_CHANNEL_TYPES = (keras.layers.BatchNormalization, keras.layers.LeakyReLU, keras.layers.ReLU,
                     keras.layers.Activation, keras.layers.Dropout, keras.layers.UpSampling2D)


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """Output channels of ``producer`` that are the input channels of ``consumer``.

    Attributes:
      producer: name of the layer whose output channels are removed (names the group).
      consumer: name of the next kernel layer, whose input channels go with them.
      between: names of the layers in between (per-channel layers and ``reshape``), in order.
      channels: C, the number of channels as the consumer sees them.
      positions: producer units per channel: s * s for Dense -> Reshape((s, s, C)), else 1.
      reshape: name of that Reshape, or None.
    """

    producer: str
    consumer: str
    between: tuple
    channels: int
    positions: int = 1
    reshape: str = None


def is_kernel_layer(layer):
    return type(layer) in KERNEL_TYPES


def output_axis(layer):
    # Conv2DTranspose kernels are [kh, kw, out, in]; Dense [in, out]; Conv2D [kh, kw, in, out].
    return 2 if type(layer) is keras.layers.Conv2DTranspose else -1


def input_axis(layer):
    return {keras.layers.Dense: 0, keras.layers.Conv2D: 2, keras.layers.Conv2DTranspose: 3}[
        type(layer)]


def chain_layers(network):
    """The layers of a chain network (each feeds only the next), input layer first."""
    if any(isinstance(layer, keras.layers.Wrapper) for layer in network.layers):
        raise ValueError(f"{network.name} has wrapped layers; channel pruning needs a plain "
                         f"network (prune channels before weight pruning and QAT)")
    configs = network.get_config()["layers"]
    for previous, layer in zip(configs, configs[1:]):
        inbound = [node[0] for nodes in layer["inbound_nodes"] for node in nodes]
        if inbound != [previous["name"]]:
            raise ValueError(f"channel pruning needs a chain network, but layer {layer['name']} "
                             f"of {network.name} takes {inbound}, not [{previous['name']!r}]")
    return network.layers


def _group_from(layers, start):
    """The `ChannelGroup` produced by ``layers[start]``, or None if its output is not prunable."""
    producer, between, reshape = layers[start], [], None
    for layer in layers[start + 1:]:
        if is_kernel_layer(layer):
            channels = int(layer.input_shape[-1])
            return ChannelGroup(producer.name, layer.name, tuple(between), channels,
                                int(producer.output_shape[-1]) // channels, reshape)
        if isinstance(layer, keras.layers.Reshape) and reshape is None and len(
                layer.input_shape) == 2 and type(producer) is keras.layers.Dense:
            reshape = layer.name
        elif not isinstance(layer, PER_CHANNEL_TYPES) or (
                isinstance(layer, keras.layers.BatchNormalization)
                and list(layer.axis) != [len(layer.input_shape) - 1]):
            return None  # e.g. Flatten or Reshape of a feature map: channels get mixed.
        between.append(layer.name)
    return None  # reaches the output: these channels are the image's


def channel_groups(generator):
    """The prunable channel groups of a generator, in network order.

    Args:
      generator: `Generator` (or Functional keras.Model) with a plain chain network.

    Returns:
      A list of `ChannelGroup`: project, up1, up2 for dcgan; dense1..3 for mlp.

    Raises:
      ValueError: the network is wrapped (pruning/QAT) or not a chain.
    """
    layers = chain_layers(getattr(generator, "network", generator))
    groups = (_group_from(layers, i) for i, layer in enumerate(layers) if is_kernel_layer(layer))
    return [group for group in groups if group is not None]


def unit_indices(group, channels):
    """Producer unit indices of ``channels`` (int [k]) -> int [positions * k], row-major."""
    return (np.arange(group.positions)[:, None] * group.channels
            + np.asarray(channels)[None, :]).reshape(-1)


# ------------------------------------------------------------------------------------------------
# MACs and parameters


def _layer_macs(layer):
    """Multiply-accumulates of one example through a (possibly wrapped) kernel layer."""
    inner = inner_layer(layer)
    kernel = kernel_variable(layer).shape
    if type(inner) is keras.layers.Dense:
        return int(kernel[0] * kernel[1])
    # The wrapper, not the wrapped layer, is the node of the graph that has shapes.
    spatial = layer.output_shape if type(inner) is keras.layers.Conv2D else layer.input_shape
    return int(spatial[1] * spatial[2] * np.prod(kernel))


def count_macs(generator):
    """Per-layer multiply-accumulates (MACs) and parameters of one forward pass at batch 1.

    MACs are those of the kernel layers, bias and elementwise work not counted:
    Dense: in * out; Conv2D: H_out * W_out * kh * kw * in * out; Conv2DTranspose:
    H_in * W_in * kh * kw * in * out (every input pixel is scattered through the whole kernel, as
    TFLite's TRANSPOSE_CONV computes it). Parameters are all the layer's weights: kernel, bias,
    and for BatchNormalization gamma, beta and the two moving statistics (4 * C). Pruning and
    quantization wrappers are seen through: a wrapped layer counts as the layer it wraps (its
    masks and quantizer ranges are not parameters of the deployed file).

    Args:
      generator: `Generator` or Functional keras.Model, plain or wrapped.

    Returns:
      A dict: ``layers`` (a list of dicts with ``layer``, ``type``, ``macs``, ``params``, one per
      layer with weights) and the totals ``macs`` and ``params``.
    """
    network = getattr(generator, "network", generator)
    rows = []
    for layer in network.layers:
        inner = inner_layer(layer)
        if not inner.weights:
            continue
        rows.append({"layer": inner.name, "type": type(inner).__name__,
                     "macs": _layer_macs(layer) if is_kernel_layer(inner) else 0,
                     "params": int(sum(np.prod(w.shape) for w in inner.weights))})
    return {"layers": rows, "macs": sum(r["macs"] for r in rows),
            "params": sum(r["params"] for r in rows)}


def macs_with_counts(generator, groups, counts):
    """Total MACs once each group keeps ``counts[producer]`` channels (MACs are bilinear in the
    input and output channels of every kernel layer, so no model needs to be built)."""
    scale = {row["layer"]: float(row["macs"]) for row in count_macs(generator)["layers"]}
    for group in groups:
        fraction = counts[group.producer] / group.channels
        scale[group.producer] *= fraction
        scale[group.consumer] *= fraction
    return sum(scale.values())
