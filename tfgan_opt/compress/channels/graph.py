"""The prunable channel groups of a generator network, and its multiply-accumulate counts.

The groups come from the network's channel dependency graph (`channels.depgraph`), for any
Functional or Sequential network. A chain (Dense -> BN -> Reshape -> Conv2DTranspose ... ->
image) is the simplest case: one group per hidden kernel layer, its output channels with the
next kernel layer's input channels. Dense -> Reshape((s, s, C)) is row-major, so channel c of the
map is Dense units {p * C + c : p < s * s}. Channels that reach the network output (the image) or
a layer without a rule are not prunable.
"""

import numpy as np

from tfgan_opt.compress.channels.depgraph import ChannelGraph, ChannelGroup
from tfgan_opt.core.compat import keras
from tfgan_opt.models.surgery import inner_layer, kernel_variable

L = keras.layers
# The layers whose multiply-accumulates `count_macs` counts (exact types: Conv2DTranspose and
# DepthwiseConv2D subclass Conv2D).
MAC_TYPES = (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D, L.Conv2DTranspose, L.DepthwiseConv2D,
             L.SeparableConv2D)

__all__ = ["ChannelGroup", "channel_graph", "channel_groups", "count_macs", "macs_with_counts"]


def channel_graph(generator):
    """The `depgraph.ChannelGraph` of a `Generator`'s network (or of a keras.Model)."""
    return ChannelGraph(getattr(generator, "network", generator))


def channel_groups(generator):
    """The prunable channel groups of a generator, in network order.

    Args:
      generator: `Generator` (or Functional/Sequential keras.Model) of plain layers.

    Returns:
      A list of `ChannelGroup`: project, up1, up2 for dcgan; dense1..3 for mlp.

    Raises:
      ValueError: the network is wrapped (pruning/QAT).
    """
    return channel_graph(generator).groups


# ------------------------------------------------------------------------------------------------
# MACs and parameters


def _layer_macs(layer):
    """Multiply-accumulates of one example through a (possibly wrapped) kernel layer."""
    inner = inner_layer(layer)
    # The wrapper, not the wrapped layer, is the node of the graph that has shapes.
    out_positions = int(np.prod(layer.output_shape[1:-1]))
    if type(inner) is L.DepthwiseConv2D:
        return out_positions * int(np.prod(inner.depthwise_kernel.shape))
    if type(inner) is L.SeparableConv2D:
        return out_positions * int(np.prod(inner.depthwise_kernel.shape)
                                   + np.prod(inner.pointwise_kernel.shape))
    kernel = int(np.prod(kernel_variable(layer).shape))
    if type(inner) is L.Conv2DTranspose:  # every input pixel is scattered through the kernel
        return int(np.prod(layer.input_shape[1:-1])) * kernel
    return out_positions * kernel


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
                     "macs": _layer_macs(layer) if type(inner) in MAC_TYPES else 0,
                     "params": int(sum(np.prod(w.shape) for w in inner.weights))})
    return {"layers": rows, "macs": sum(r["macs"] for r in rows),
            "params": sum(r["params"] for r in rows)}


def macs_with_counts(generator, groups, counts, graph=None):
    """Total MACs once each group keeps ``counts[producer]`` channels (MACs are bilinear in the
    input and output channels of every kernel layer, linear in the channels of a depthwise one,
    so no model needs to be built)."""
    graph = graph or channel_graph(generator)
    keep = {g.producer: np.arange(counts[g.producer]) for g in groups}
    total = 0.0
    for row in count_macs(generator)["layers"]:
        if not row["macs"]:  # BN, a class embedding: weights but no multiply-accumulates
            continue
        layer = graph.network.get_layer(row["layer"])
        fractions = []
        for side in ("in", "out"):
            kept = graph.kept_units(layer.name, side, keep)
            width = layer.input_shape[-1] if side == "in" else layer.output_shape[-1]
            fractions.append(1.0 if kept is None else len(kept) / width)
        if type(layer) is L.DepthwiseConv2D:
            total += row["macs"] * fractions[0]
        elif type(layer) is L.SeparableConv2D:
            depthwise = int(np.prod(layer.output_shape[1:-1])) * int(
                np.prod(layer.depthwise_kernel.shape))
            total += depthwise * fractions[0] + (row["macs"] - depthwise) * fractions[0] * (
                fractions[1])
        else:
            total += row["macs"] * fractions[0] * fractions[1]
    return total
