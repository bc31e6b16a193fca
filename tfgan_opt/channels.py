"""Structured channel pruning: whole channels removed, so the generator gets faster, not smaller only.

Zeroing single weights shrinks a file but not its latency: TFLite's CPU kernels are dense (an
80%-sparse int8 DCGAN generator ran slower than the dense one). Removing whole output channels of a
layer, with the matching input channels of the next one, gives a narrower network of standard
layers that every runtime speeds up on (GAN Compression, Li et al. CVPR 2020; GAN Slimming, Wang
et al. ECCV 2020; Content-Aware GAN Compression, Liu et al. CVPR 2021).

Model: the generator's network is a chain. A *channel group* is a Dense/Conv2D/Conv2DTranspose
(the producer) whose output reaches the next kernel layer (the consumer) through per-channel layers
only (BatchNormalization, activations) and at most one Reshape of a flat Dense output to
(s, s, C). Removing channel c deletes the producer's output c (kernel slice, bias, BN gamma, beta
and moving statistics) and the consumer's input c. Dense -> Reshape((s, s, C)) is row-major, so
channel c of the map is Dense units {p * C + c : p < s * s}. A producer whose output is the image
(the last layer) has no group: its channels are not prunable.

Pipeline: `channel_prune` (or `channel_prune_gan`, which also BN-folds and fine-tunes it with
`recover.recover`) -> optional `prune.prune_gan` (weights) -> `quantize.quantize_aware_finetune` ->
int8 TFLite export.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.compat import keras
from tfgan_opt.config import ChannelPruneConfig
from tfgan_opt.errors import ConfigError
from tfgan_opt.losses import non_saturating_generator_loss

# Exact types (not isinstance): Conv2DTranspose and DepthwiseConv2D subclass Conv2D.
KERNEL_TYPES = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)
# Layers that act on each channel separately, so a removed channel can simply be skipped there.
PER_CHANNEL_TYPES = (keras.layers.BatchNormalization, keras.layers.LeakyReLU, keras.layers.ReLU,
                     keras.layers.Activation, keras.layers.Dropout)


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


def _is_kernel_layer(layer):
    return type(layer) in KERNEL_TYPES


def _output_axis(layer):
    # Conv2DTranspose kernels are [kh, kw, out, in]; Dense [in, out]; Conv2D [kh, kw, in, out].
    return 2 if type(layer) is keras.layers.Conv2DTranspose else -1


def _input_axis(layer):
    return {keras.layers.Dense: 0, keras.layers.Conv2D: 2, keras.layers.Conv2DTranspose: 3}[
        type(layer)]


def _chain_layers(network):
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
        if _is_kernel_layer(layer):
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
    layers = _chain_layers(getattr(generator, "network", generator))
    groups = (_group_from(layers, i) for i, layer in enumerate(layers) if _is_kernel_layer(layer))
    return [group for group in groups if group is not None]


def _unit_indices(group, channels):
    """Producer unit indices of ``channels`` (int [k]) -> int [positions * k], row-major."""
    return (np.arange(group.positions)[:, None] * group.channels
            + np.asarray(channels)[None, :]).reshape(-1)


# ------------------------------------------------------------------------------------------------
# MACs and parameters


def _layer_macs(layer):
    """Multiply-accumulates of one example through a kernel layer (see `count_macs`)."""
    kernel = layer.kernel.shape
    if type(layer) is keras.layers.Dense:
        return int(kernel[0] * kernel[1])
    spatial = layer.output_shape if type(layer) is keras.layers.Conv2D else layer.input_shape
    return int(spatial[1] * spatial[2] * np.prod(kernel))


def count_macs(generator):
    """Per-layer multiply-accumulates (MACs) and parameters of one forward pass at batch 1.

    MACs are those of the kernel layers, bias and elementwise work not counted:
    Dense: in * out; Conv2D: H_out * W_out * kh * kw * in * out; Conv2DTranspose:
    H_in * W_in * kh * kw * in * out (every input pixel is scattered through the whole kernel, as
    TFLite's TRANSPOSE_CONV computes it). Parameters are all the layer's weights: kernel, bias,
    and for BatchNormalization gamma, beta and the two moving statistics (4 * C).

    Args:
      generator: `Generator` or Functional keras.Model (plain; wrapped layers are skipped).

    Returns:
      A dict: ``layers`` (a list of dicts with ``layer``, ``type``, ``macs``, ``params``, one per
      layer with weights) and the totals ``macs`` and ``params``.
    """
    network = getattr(generator, "network", generator)
    rows = [{"layer": layer.name, "type": type(layer).__name__,
             "macs": _layer_macs(layer) if _is_kernel_layer(layer) else 0,
             "params": int(sum(np.prod(w.shape) for w in layer.weights))}
            for layer in network.layers if layer.weights]
    return {"layers": rows, "macs": sum(r["macs"] for r in rows),
            "params": sum(r["params"] for r in rows)}


def _macs_with_counts(generator, groups, counts):
    """Total MACs once each group keeps ``counts[producer]`` channels (MACs are bilinear in the
    input and output channels of every kernel layer, so no model needs to be built)."""
    scale = {row["layer"]: float(row["macs"]) for row in count_macs(generator)["layers"]}
    for group in groups:
        fraction = counts[group.producer] / group.channels
        scale[group.producer] *= fraction
        scale[group.consumer] *= fraction
    return sum(scale.values())


# ------------------------------------------------------------------------------------------------
# Importance criteria: one signature, fn(generator, groups, latents, discriminator) ->
# {producer name: float64 [C]}, larger = more important. Scores compare channels within a group.


def _per_channel(values, axis, group):
    """Sums |values| over all axes but ``axis`` (producer units), then over each channel's units."""
    units = np.sum(np.abs(np.moveaxis(values, axis, -1)).reshape(-1, values.shape[axis]), axis=0)
    return units.reshape(group.positions, group.channels).sum(axis=0).astype(np.float64)


def l1_importance(generator, groups, latents=None, discriminator=None):
    """L1 norm of each output channel's filter (Li et al. 2017, "Pruning Filters")."""
    del latents, discriminator
    network = generator.network
    return {g.producer: _per_channel(network.get_layer(g.producer).kernel.numpy(),
                                     _output_axis(network.get_layer(g.producer)), g)
            for g in groups}


def bn_scale_importance(generator, groups, latents=None, discriminator=None):
    """|gamma| of the BatchNormalization after the producer (Liu et al. 2017, "Network Slimming";
    the GAN Slimming criterion)."""
    del latents, discriminator
    scores = {}
    for group in groups:
        norms = [generator.network.get_layer(name) for name in group.between]
        norms = [n for n in norms if isinstance(n, keras.layers.BatchNormalization) and n.scale]
        if not norms:
            raise ConfigError(f"criterion 'bn_scale' needs a BatchNormalization with a scale after "
                              f"{group.producer} (was the generator BN-folded?); use 'l1', "
                              f"'activation' or 'taylor'")
        gamma = norms[0].gamma.numpy()
        after_reshape = group.reshape is not None and group.between.index(
            group.reshape) < group.between.index(norms[0].name)
        scores[group.producer] = (np.abs(gamma) if after_reshape
                                  else _per_channel(gamma, 0, group) / group.positions)
    return scores


def _consumer_inputs_model(generator, groups):
    network = generator.network
    return keras.Model(network.inputs, [network.get_layer(g.consumer).input for g in groups]
                       + [network.output])


def activation_importance(generator, groups, latents, discriminator=None):
    """Mean |activation| of each channel where the consumer reads it, over a batch of z (a
    data-aware criterion: a channel the latents rarely excite contributes little)."""
    del discriminator
    outputs = _consumer_inputs_model(generator, groups)(latents, training=False)[:-1]
    return {g.producer: np.mean(np.abs(a.numpy()).reshape(-1, g.channels), axis=0)
            .astype(np.float64) for g, a in zip(groups, outputs)}


def taylor_importance(generator, groups, latents, discriminator):
    """First-order Taylor estimate of the generator loss change when a channel is removed:
    mean over z of |sum over positions of a * dL/da|, L the discriminator's non-saturating
    generator loss (Molchanov et al. 2017, "Pruning CNNs for resource efficient inference")."""
    if discriminator is None:
        raise ConfigError("criterion 'taylor' needs the discriminator")
    probe = _consumer_inputs_model(generator, groups)
    with tf.GradientTape() as tape:
        outputs = probe(tf.convert_to_tensor(latents), training=False)
        loss = tf.reduce_mean(non_saturating_generator_loss(
            discriminator(outputs[-1], training=False)))
    gradients = tape.gradient(loss, outputs[:-1])
    scores = {}
    for group, a, g in zip(groups, outputs[:-1], gradients):
        product = (a * g).numpy().reshape(len(latents), -1, group.channels)
        scores[group.producer] = np.mean(np.abs(product.sum(axis=1)), axis=0).astype(np.float64)
    return scores


CRITERIA = {
    "l1": l1_importance,
    "bn_scale": bn_scale_importance,
    "activation": activation_importance,
    "taylor": taylor_importance,
}


# ------------------------------------------------------------------------------------------------
# Selection


def _kept_count(channels, ratio, config):
    count = max(config.min_channels, int(round(channels * (1.0 - ratio))))
    count = -(-count // config.channel_multiple) * config.channel_multiple
    return min(channels, count)


def _counts_for_ratio(groups, ratio, config):
    ratios = ratio if isinstance(ratio, dict) else {g.producer: ratio for g in groups}
    unknown = sorted(set(ratios) - {g.producer for g in groups})
    if unknown:
        raise ConfigError(f"ratio names {', '.join(unknown)}, which are not prunable layers; "
                          f"choose from {', '.join(g.producer for g in groups)}")
    return {g.producer: _kept_count(g.channels, ratios.get(g.producer, 0.0), config)
            for g in groups}


def _counts_for_macs(generator, groups, config):
    """Kept channel counts of the smallest uniform ratio whose MACs fit ``macs_target``."""
    budget = config.macs_target * count_macs(generator)["macs"]
    low, high = 0.0, 1.0 - 1e-9  # MACs fall (weakly) as the ratio grows: bisect on it
    if _macs_with_counts(generator, groups, _counts_for_ratio(groups, high, config)) > budget:
        raise ConfigError(f"macs_target={config.macs_target} is out of reach: even "
                          f"min_channels={config.min_channels} in every layer costs more")
    for _ in range(40):
        middle = (low + high) / 2
        counts = _counts_for_ratio(groups, middle, config)
        if _macs_with_counts(generator, groups, counts) <= budget:
            high = middle
        else:
            low = middle
    return _counts_for_ratio(groups, high, config)


def select_channels(generator, config, discriminator=None):
    """Scores the channels of every group and keeps the most important ones.

    Args:
      generator: `Generator` with a plain chain network.
      config: `ChannelPruneConfig`.
      discriminator: `Discriminator`, needed by the ``taylor`` criterion.

    Returns:
      A dict producer name -> sorted int64 indices [k] of the channels to keep.

    Raises:
      ConfigError: a layer in ``config.ratio`` is not prunable, the MACs target cannot be met, or
        the criterion cannot score this generator.
    """
    groups = channel_groups(generator)
    if config.ratio is not None:
        counts = _counts_for_ratio(groups, config.ratio, config)
    else:
        counts = _counts_for_macs(generator, groups, config)
    latents = generator.sample_latents(config.calibration_samples, config.seed)
    scores = CRITERIA[config.criterion](generator, groups, latents, discriminator)
    return {g.producer: np.sort(np.argsort(-scores[g.producer], kind="stable")[:counts[g.producer]])
            for g in groups}


# ------------------------------------------------------------------------------------------------
# Removal


def _slices(groups, keep):
    """Layer name -> {"out": unit indices, "in": channel indices, "width": C'} to apply."""
    by_producer = {g.producer: g for g in groups}
    unknown = sorted(set(keep) - set(by_producer))
    if unknown:
        raise ConfigError(f"cannot remove channels of {', '.join(unknown)}: not prunable layers")
    slices = {}
    for name, channels in keep.items():
        group, channels = by_producer[name], np.asarray(channels, np.int64)
        if not len(channels) or channels.min() < 0 or channels.max() >= group.channels:
            raise ConfigError(f"channels to keep of {name} must be a non-empty subset of "
                              f"0..{group.channels - 1}")
        units = _unit_indices(group, channels)
        slices.setdefault(name, {})["out"] = units
        seen_reshape = False
        for layer in group.between:
            seen_reshape = seen_reshape or layer == group.reshape
            slices[layer] = {"out": channels if seen_reshape else units, "width": len(channels)}
        slices.setdefault(group.consumer, {})["in"] = channels
    return slices


def _narrowed_config(layer, cut):
    config = layer.get_config()
    if "out" in cut and type(layer) is keras.layers.Dense:
        config["units"] = len(cut["out"])
    elif "out" in cut and _is_kernel_layer(layer):
        config["filters"] = len(cut["out"])
    elif isinstance(layer, keras.layers.Reshape) and "width" in cut:
        config["target_shape"] = tuple(config["target_shape"][:-1]) + (cut["width"],)
    return config


def _narrowed_weights(layer, cut):
    weights = layer.get_weights()
    if not weights or not cut:
        return weights
    if isinstance(layer, keras.layers.BatchNormalization):
        return [w[cut["out"]] for w in weights]
    kernel, vectors = weights[0], weights[1:]
    if "in" in cut:
        kernel = np.take(kernel, cut["in"], axis=_input_axis(layer))
    if "out" in cut:
        kernel = np.take(kernel, cut["out"], axis=_output_axis(layer))
        vectors = [v[cut["out"]] for v in vectors]
    return [kernel] + vectors


def narrow_channels(generator, keep):
    """Builds the narrower generator that keeps only ``keep``'s channels.

    Args:
      generator: `Generator` with a plain chain network (unchanged).
      keep: dict producer name -> indices of its channels to keep (groups not named keep all).

    Returns:
      A `Generator` of the same class around a new Functional network of the same standard
      layers, names and input/output shapes, with fewer channels. In inference mode it computes
      what `mask_channels(generator, keep)` computes.

    Raises:
      ConfigError: ``keep`` names a layer that is not prunable, or an invalid channel.
    """
    network = generator.network
    layers = _chain_layers(network)
    slices = _slices(channel_groups(generator), keep)
    inputs = keras.Input(batch_shape=network.input_shape, name=layers[0].name)
    x = inputs
    for layer in layers[1:]:
        cut = slices.get(layer.name, {})
        narrowed = type(layer).from_config(_narrowed_config(layer, cut))
        x = narrowed(x)
        narrowed.set_weights(_narrowed_weights(layer, cut))
    return generator.with_network(keras.Model(inputs, x, name=network.name))


def mask_channels(generator, keep):
    """A same-width copy of ``generator`` whose channels not in ``keep`` output exactly zero.

    The producer's kernel slice and bias, and the following BatchNormalization's gamma, beta and
    moving mean are zeroed, so the channel is 0 after BN (in both modes) and after any activation
    with f(0) = 0: the reference that `narrow_channels` must match.

    Args, Raises: as `narrow_channels`.

    Returns:
      A `Generator` with the same architecture as ``generator`` (unchanged).
    """
    network = generator.network
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    groups = {g.producer: g for g in channel_groups(generator)}
    for name, cut in _slices(list(groups.values()), keep).items():
        layer = copy.get_layer(name)
        if "out" not in cut or not (_is_kernel_layer(layer) or isinstance(
                layer, keras.layers.BatchNormalization)):
            continue
        size = layer.output_shape[-1]
        removed = np.setdiff1d(np.arange(size), cut["out"])
        weights = layer.get_weights()
        if _is_kernel_layer(layer):
            index = [slice(None)] * weights[0].ndim
            index[_output_axis(layer)] = removed
            weights[0][tuple(index)] = 0.0
            vectors = range(1, len(weights))
        else:  # gamma, beta, moving mean; the variance stays positive
            vectors = range(len(weights) - 1)
        for i in vectors:
            weights[i][removed] = 0.0
        layer.set_weights(weights)
    return generator.with_network(copy)


def channel_prune(generator, ratio=None, *, macs_target=None, criterion="l1", discriminator=None,
                  **options):
    """Removes the least important channels of a generator: a narrower, faster `Generator`.

    Args:
      generator: trained `Generator` with a plain chain network (dcgan or mlp; BN folded or not),
        unchanged.
      ratio: fraction of channels to remove from each prunable layer in [0, 1), or a dict
        layer name -> fraction. Exclusive with ``macs_target``.
      macs_target: fraction of ``generator``'s MACs (`count_macs`) to keep, in (0, 1]; every
        prunable layer loses the same fraction of its channels.
      criterion: a name in `CRITERIA`: ``l1`` (filter norm), ``bn_scale`` (BN |gamma|),
        ``activation`` (mean |activation| over z) or ``taylor`` (|a * dL/da|, needs
        ``discriminator``).
      discriminator: `Discriminator`, for ``taylor``.
      **options: other `ChannelPruneConfig` fields (``calibration_samples``, ``seed``,
        ``min_channels``, ``channel_multiple``).

    Returns:
      The narrowed `Generator` (not fine-tuned; see `channel_prune_gan`).

    Raises:
      ConfigError: invalid ratio, target or criterion (see `ChannelPruneConfig`).
    """
    config = ChannelPruneConfig(ratio=ratio, macs_target=macs_target, criterion=criterion,
                                **options)
    return narrow_with_config(generator, config, discriminator)


def narrow_with_config(generator, config, discriminator=None):
    """`select_channels` then `narrow_channels`, for a `ChannelPruneConfig`; logs the MACs."""
    keep = select_channels(generator, config, discriminator)
    narrowed = narrow_channels(generator, keep)
    before, after = count_macs(generator)["macs"], count_macs(narrowed)["macs"]
    logging.info("Channel pruning (%s): %s; MACs %d -> %d (%.2fx fewer).", config.criterion,
                 ", ".join(f"{name} {len(k)}" for name, k in keep.items()), before, after,
                 before / max(after, 1))
    return narrowed


def channel_prune_gan(generator, discriminator, dataset, channel_config, recovery_config,
                      loss_config, run_dir=None, train_config=None):
    """Channel-prunes a trained generator, BN-folds it and fine-tunes it with `recover.recover`.

    Args:
      generator: trained dense `Generator`: pruned (a copy) and the distillation teacher.
      discriminator: `Discriminator` (updated unless ``recovery_config.train_discriminator`` is
        False).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels).
      channel_config: `ChannelPruneConfig`.
      recovery_config: `RecoveryConfig` (steps 0: no fine-tune).
      loss_config: `LossConfig` of the adversarial term.
      run_dir, train_config: as for `recover.recover`.

    Returns:
      (narrow BN-folded `Generator`, discriminator).
    """
    from tfgan_opt.fold import fold_batch_norm
    from tfgan_opt.recover import recover  # imports tfmot: only when fine-tuning
    # Folded so the student trains as it runs (see recover.RecoveryTrainer); scored unfolded so
    # that 'bn_scale' sees the BN layers.
    student = fold_batch_norm(narrow_with_config(generator, channel_config, discriminator))
    student = recover(student, generator, discriminator, dataset, recovery_config, loss_config,
                      run_dir=run_dir, train_config=train_config)
    return student, discriminator
