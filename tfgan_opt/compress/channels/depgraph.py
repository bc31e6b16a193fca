"""A channel dependency graph of a Functional (or Sequential) Keras network.

Removing output channel c of a Conv2D is only correct if every layer that sees channel c of that
tensor drops it too: the next kernel layers' input c, a BatchNormalization's statistics, the other
operand of an Add, the matching slice of a Concatenate. Torch-Pruning's DepGraph (Fang et al.,
CVPR 2023, "DepGraph: Towards Any Structural Pruning") groups such coupled channels for PyTorch;
this module does the same for Keras by tracing the layer nodes of the network.

Every tensor's channel (last) axis is described as a list of *segments* ``(space, size)``: a
*space* is a set of channels that are removed together; Concatenate concatenates segment lists,
Flatten of an (H, W, C) map repeats one space H * W times (unit p * C + c is channel c), a Reshape
of a Dense output to (s, s, C) *refines* the Dense's space into s * s repetitions of a C-space
(so does a `DepthToSpace` of block r: its r * r * C input channels are r * r repetitions of C),
Add/Subtract/Multiply/Maximum/Minimum/Average *tie* (merge) the spaces of their operands, and
per-channel layers (BatchNormalization on the channel axis, elementwise activations, Dropout,
pooling, UpSampling, ZeroPadding, Cropping, depthwise convolutions with depth_multiplier 1) pass
their input's segments through. A kernel layer (Dense, Conv1D/2D/3D, Conv2DTranspose,
SeparableConv2D) starts a new space: its output channels.

A space is *protected* (never pruned) if it reaches the network's inputs or outputs, or a layer
this module cannot reason about: a Lambda, a custom layer, a layer called more than once, a
softmax or a LayerNormalization over the channel axis (both mix channels), a channels-first
layer, a reshape that is not a plain flatten/unflatten of the channel axis. Such a layer keeps all
its channels and so do its neighbours; nothing is pruned on a guess.

A *prunable group* is an unprotected space with at least one kernel producer.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfgan_opt.compress.channels.spaces import ChannelSpaces
from tfgan_opt.core.compat import keras
from tfgan_opt.models.sr import DepthToSpace

L = keras.layers
# Kernel layers whose output channels start a new space; the kernel's (input, output) axes.
PRODUCER_AXES = {L.Dense: (0, 1), L.Conv1D: (-2, -1), L.Conv2D: (-2, -1), L.Conv3D: (-2, -1),
                 L.Conv2DTranspose: (-1, -2)}
# Layers that act on each channel separately and hold no per-channel weights.
PASS_THROUGH_TYPES = (
    L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D,
    L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
    L.UpSampling1D, L.UpSampling2D, L.UpSampling3D, L.MaxPooling1D, L.MaxPooling2D,
    L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D,
    L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D,
    L.ActivityRegularization)
ELEMENTWISE_TYPES = (L.Add, L.Subtract, L.Multiply, L.Maximum, L.Minimum, L.Average)
# Activations that mix channels (everything else Keras names is elementwise).
MIXING_ACTIVATIONS = ("softmax", "log_softmax")


@dataclasses.dataclass(frozen=True, eq=False)
class Member:
    """Where a group's channels sit in one layer: ``units[i]`` of the layer's ``side`` axis
    (``"out"`` output channels or ``"in"`` input channels) is channel ``channels[i]``."""

    layer: str
    side: str
    units: np.ndarray
    channels: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelGroup:
    """Channels that must be removed together.

    Attributes:
      producer: the first kernel layer (network order) whose output channels these are; names
        the group.
      consumer: the first kernel layer that reads them.
      channels: C, the number of channels.
      positions: units of ``producer``'s output per channel (s * s for Dense -> Reshape((s, s,
        C)), else 1).
      producers: every kernel layer whose output channels these are (several through Add).
      consumers: every kernel layer that reads them (several through branches or Concatenate).
      members: `Member` per (layer, side) holding these channels: kernel outputs and inputs,
        and BatchNormalization / PReLU / DepthwiseConv2D weights.
      between: names of the layers whose output carries these channels and are not producers.
    """

    producer: str
    consumer: str
    channels: int
    positions: int
    producers: tuple
    consumers: tuple
    members: tuple
    between: tuple

    def member(self, layer, side):
        return next((m for m in self.members if m.layer == layer and m.side == side), None)


def producer_axes(layer):
    return PRODUCER_AXES.get(type(layer))


def _is_channels_last(layer):
    return getattr(layer, "data_format", "channels_last") in ("channels_last", None)


def _mixing_activation(layer):
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) in MIXING_ACTIVATIONS


def _channel_tensors(layer, node, outputs):
    """The tensors whose channel count must be known: an Embedding's input holds indices."""
    if type(layer) is L.Embedding:
        return outputs
    return list(node.keras_inputs) + outputs


def _segments_size(segments):
    return sum(size for _, size in segments)


class ChannelGraph:
    """The traced channel dependencies of a network (see the module docstring).

    Args:
      network: Functional or Sequential keras.Model of plain layers (no pruning/QAT wrappers).

    Raises:
      ValueError: the network holds wrapped layers.
    """

    def __init__(self, network):
        if any(isinstance(layer, L.Wrapper) for layer in network.layers):
            raise ValueError(f"{network.name} has wrapped layers; channel pruning needs a plain "
                             f"network (prune channels before weight pruning and QAT)")
        self.network = network
        self.spaces = ChannelSpaces()
        self.tensor_segments = {}   # id(KerasTensor) -> segments
        self.layer_in, self.layer_out, self.in_tensor = {}, {}, {}
        self.own_space = {}         # producer name -> its output space
        self.blocked = {}           # layer name -> why its channels are protected
        self.order = []
        nodes = [node for depth in sorted(network._nodes_by_depth, reverse=True)
                 for node in network._nodes_by_depth[depth]]
        calls = {}
        for node in nodes:
            calls[node.layer.name] = calls.get(node.layer.name, 0) + 1
        for node in nodes:
            self._visit(node, calls[node.layer.name])
        for tensor in network.outputs:
            self._protect_segments(self.tensor_segments[id(tensor)], "network output")
        self._settle_protection()
        self.groups = self._make_groups()

    # -- tracing -------------------------------------------------------------------------------

    def _protect_segments(self, segments, reason):
        for space, _ in segments:
            self.spaces.protect(space, reason)

    def _fresh(self, tensor, protect_reason=None):
        size = tensor.shape[-1] if tensor.shape.rank else 1
        space = self.spaces.new(size if size is not None else 0)
        if protect_reason:
            self.spaces.protect(space, protect_reason)
        return [(space, self.spaces.size[space])]

    def _visit(self, node, calls):
        layer = node.layer
        outputs = tf.nest.flatten(node.outputs)
        if node.is_input:
            self.tensor_segments[id(outputs[0])] = self._fresh(outputs[0], "network input")
            return
        self.order.append(layer.name)
        inputs = [self.tensor_segments[id(t)] for t in node.keras_inputs]
        reason = None
        if calls > 1:
            reason = f"called {calls} times (shared weights)"
        elif len(outputs) != 1 or any(t.shape.rank is None or t.shape[-1] is None
                                      for t in _channel_tensors(layer, node, outputs)):
            reason = "has an unknown channel count or several outputs"
        else:
            if len(inputs) == 1:
                self.layer_in[layer.name] = inputs[0]
                self.in_tensor[layer.name] = node.keras_inputs[0]
            out, reason = self._rule(layer, inputs, node.keras_inputs, outputs[0])
        if reason is not None:
            self.blocked[layer.name] = reason
            for segments in inputs:
                self._protect_segments(segments, f"{layer.name} {reason}")
            out = self._fresh(outputs[0], f"{layer.name} {reason}") if outputs[0].shape.rank else []
            self.layer_in.pop(layer.name, None)
        self.tensor_segments[id(outputs[0])] = out
        self.layer_out[layer.name] = out

    def _rule(self, layer, inputs, in_tensors, out_tensor):
        """(output segments, None), or (None, why the layer blocks pruning)."""
        kind = type(layer)
        if not _is_channels_last(layer):
            return None, "is channels-first"
        if kind in PRODUCER_AXES or kind is L.SeparableConv2D:
            if getattr(layer, "groups", 1) != 1:
                return None, "is a grouped convolution"
            if kind is L.SeparableConv2D and layer.depth_multiplier != 1:
                return None, "has depth_multiplier != 1"
            out = self._fresh(out_tensor, f"{layer.name} has a {layer.activation.__name__} "
                              f"activation" if _mixing_activation(layer) else None)
            self.own_space[layer.name] = out[0][0]
            return out, None
        if kind is L.DepthwiseConv2D:
            if layer.depth_multiplier != 1:
                return None, "has depth_multiplier != 1"
            return inputs[0], None
        if kind is L.BatchNormalization:
            axes = [a % out_tensor.shape.rank for a in layer.axis]
            return (inputs[0], None) if axes == [out_tensor.shape.rank - 1] else (
                None, "normalizes another axis than channels")
        if kind in (L.LayerNormalization, getattr(L, "GroupNormalization", ())):
            axes = [a % out_tensor.shape.rank for a in getattr(layer, "axis", [-1])]
            if kind is L.LayerNormalization and out_tensor.shape.rank - 1 not in axes:
                return inputs[0], None
            return None, "normalizes over the channel axis (mixes channels)"
        if kind is L.PReLU:
            return inputs[0], None
        if kind is L.Embedding:
            # A lookup table: its input is indices (no channels); its output columns are new
            # channels, which a conditional generator ties to z (a network input) by Add.
            return self._fresh(out_tensor), None
        if kind in (L.Activation, L.Softmax):
            mixing = kind is L.Softmax or _mixing_activation(layer)
            return (None, "mixes channels (softmax)") if mixing else (inputs[0], None)
        if isinstance(layer, PASS_THROUGH_TYPES) and type(layer) in PASS_THROUGH_TYPES:
            return inputs[0], None
        if kind in ELEMENTWISE_TYPES:
            return self._tie(inputs)
        if kind is L.Concatenate:
            if layer.axis % out_tensor.shape.rank == out_tensor.shape.rank - 1:
                return [s for segments in inputs for s in segments], None
            return self._tie(inputs)
        if kind in (L.Reshape, L.Flatten):
            return self._reshape(inputs[0], in_tensors[0].shape, out_tensor.shape)
        if kind is DepthToSpace:
            # Input channel (i * r + j) * C + c becomes channel c: the flat layout of a reshape
            # of C * r * r channels to C, so the input's space is refined into r * r repetitions.
            return self._reshape(inputs[0], in_tensors[0].shape, out_tensor.shape)
        return None, f"is a {kind.__name__}, which channel pruning has no rule for"

    def _tie(self, inputs):
        expanded = [self.spaces.expand(segments) for segments in inputs]
        if any([s for _, s in e] != [s for _, s in expanded[0]] for e in expanded):
            return None, "combines inputs whose channels do not line up"
        for other in expanded[1:]:
            for (a, _), (b, _) in zip(expanded[0], other):
                self.spaces.union(a, b)
        return inputs[0], None

    def _reshape(self, segments, in_shape, out_shape):
        # A reshape moves no data: flat index = position * C + c. So if the new last axis is a
        # multiple of C, its unit u is channel u % C; if C is a multiple of the new last axis C',
        # new channel c' gathers the units u = c' (mod C'), which is a channel only if the input
        # repeats with period C' (a refined space, or a flattened map).
        channels_in, channels_out = int(in_shape[-1]), int(out_shape[-1])
        if channels_out % channels_in == 0:
            return segments * (channels_out // channels_in), None
        if channels_in % channels_out == 0:
            repeats = channels_in // channels_out
            expanded = self.spaces.expand(segments)
            if len(expanded) == 1:  # unflatten of one space: refine it
                root, base = expanded[0][0], self.spaces.new(channels_out)
                if self.spaces.is_protected(root):
                    self.spaces.protect(base, self.spaces.protected[root])
                self.spaces.refine[root] = (base, repeats)
                return [(base, channels_out)], None
            period = len(expanded) // repeats
            if (len(expanded) % repeats == 0 and expanded == expanded[:period] * repeats
                    and _segments_size(expanded[:period]) == channels_out):
                return expanded[:period], None
        return None, "reshapes across the channel axis"

    def _settle_protection(self):
        changed = True
        while changed:
            changed = False
            for root, (base, _) in list(self.spaces.refine.items()):
                a, b = self.spaces.is_protected(root), self.spaces.is_protected(base)
                if a != b:
                    reason = self.spaces.protected[self.spaces.find(root if a else base)]
                    self.spaces.protect(base if a else root, reason)
                    changed = True

    # -- groups --------------------------------------------------------------------------------

    def _members(self, name, side, segments):
        by_root, offset = {}, 0
        for root, size in self.spaces.expand(segments):
            units, chans = by_root.setdefault(root, ([], []))
            units.extend(range(offset, offset + size))
            chans.extend(range(size))
            offset += size
        return {root: Member(name, side, np.array(u, np.int64), np.array(c, np.int64))
                for root, (u, c) in by_root.items()}

    def _make_groups(self):
        by_root = {}
        for name in self.order:
            layer = self.network.get_layer(name)
            sides = []
            if name in self.own_space:
                sides.append(("out", self.layer_out[name]))
            if name in self.layer_in and (producer_axes(layer) or isinstance(
                    layer, (L.SeparableConv2D, L.DepthwiseConv2D, L.BatchNormalization, L.PReLU))):
                sides.append(("in", self.layer_in[name]))
            elif name in self.layer_out:
                sides.append(("carry", self.layer_out[name]))
            for side, segments in sides:
                for root, member in self._members(name, side, segments).items():
                    by_root.setdefault(root, []).append(member)
        groups = []
        for name in self.order:
            if name not in self.own_space:
                continue
            root = self.spaces.expand([(self.own_space[name], 1)])[0][0]
            if self.spaces.is_protected(root) or any(g[0] == root for g in groups):
                continue
            groups.append((root, name))
        return [self._group(root, name, by_root[root]) for root, name in groups]

    def _group(self, root, name, members):
        producers = tuple(m.layer for m in members if m.side == "out")
        consumers = tuple(m.layer for m in members if m.side == "in" and self._reads(m.layer))
        if not consumers:  # e.g. channels only summed into the output: protected already
            consumers = ("",)
        own = next(m for m in members if m.layer == name and m.side == "out")
        members = tuple(m for m in members if m.side != "carry")
        between = tuple(dict.fromkeys(m.layer for m in members if m.layer not in producers
                                      and m.layer not in consumers))
        return ChannelGroup(name, consumers[0], self.spaces.size[root],
                            len(own.units) // self.spaces.size[root], producers, consumers,
                            members, between)

    def _reads(self, name):
        layer = self.network.get_layer(name)
        return bool(producer_axes(layer)) or isinstance(layer, L.SeparableConv2D)

    # -- queries -------------------------------------------------------------------------------

    def kept_units(self, name, side, keep):
        """Indices kept on ``name``'s ``side`` (``"in"``/``"out"``) axis, or None if all are.

        Args:
          keep: dict group producer -> sorted channel indices to keep.
        """
        segments = (self.layer_in if side == "in" else self.layer_out).get(name)
        if segments is None:
            return None
        roots = {self.spaces.expand([(self.own_space[g.producer], 1)])[0][0]: g
                 for g in self.groups}
        kept, offset, changed = [], 0, False
        for root, size in self.spaces.expand(segments):
            group = roots.get(root)
            if group is not None and group.producer in keep:
                kept.append(offset + np.asarray(keep[group.producer], np.int64))
                changed = changed or len(keep[group.producer]) != size
            else:
                kept.append(offset + np.arange(size))
            offset += size
        return np.concatenate(kept) if changed else None
