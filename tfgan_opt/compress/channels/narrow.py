"""Structured channel pruning: whole channels go, so the generator gets faster, not only smaller.

Zeroing single weights shrinks a file but not its latency: TFLite's CPU kernels are dense (an
80%-sparse int8 DCGAN generator ran slower than the dense one). Removing whole output channels of a
layer, with the matching input channels of the next one, gives a narrower network of standard
layers that every runtime speeds up on (GAN Compression, Li et al. CVPR 2020; GAN Slimming, Wang
et al. ECCV 2020; Content-Aware GAN Compression, Liu et al. CVPR 2021).

Which channels can go (`channel_groups`: project/up1/up2 of dcgan, dense1..3 of mlp, never the
image channels) and what a forward pass costs (`count_macs`) are in `channels.graph`; the
importance criteria (`CRITERIA`) in `channels.criteria`. This module selects channels and removes
them; `tfgan_opt.pipeline.finetune.channel_prune_gan` fine-tunes the result.
"""

import numpy as np
from absl import logging

from tfgan_opt.compress.channels.criteria import CRITERIA
from tfgan_opt.compress.channels.graph import (chain_layers, channel_groups, count_macs, input_axis,
                                               is_kernel_layer, macs_with_counts, output_axis,
                                               unit_indices)
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import ChannelPruneConfig
from tfgan_opt.core.errors import ConfigError


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
    if macs_with_counts(generator, groups, _counts_for_ratio(groups, high, config)) > budget:
        raise ConfigError(f"macs_target={config.macs_target} is out of reach: even "
                          f"min_channels={config.min_channels} in every layer costs more")
    for _ in range(40):
        middle = (low + high) / 2
        counts = _counts_for_ratio(groups, middle, config)
        if macs_with_counts(generator, groups, counts) <= budget:
            high = middle
        else:
            low = middle
    return _counts_for_ratio(groups, high, config)


def _calibration_latents(generator, config):
    return generator.sample_latents(config.calibration_samples, config.seed)


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
    scores = CRITERIA[config.criterion](generator, groups, _calibration_latents(generator, config),
                                        discriminator)
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
        if (not len(channels) or channels.min() < 0 or channels.max() >= group.channels
                or len(np.unique(channels)) != len(channels)):
            raise ConfigError(f"channels to keep of {name} must be a non-empty subset of "
                              f"0..{group.channels - 1}, each index once")
        units = unit_indices(group, channels)
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
    elif "out" in cut and is_kernel_layer(layer):
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
        kernel = np.take(kernel, cut["in"], axis=input_axis(layer))
    if "out" in cut:
        kernel = np.take(kernel, cut["out"], axis=output_axis(layer))
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
    layers = chain_layers(network)
    slices = _slices(channel_groups(generator), keep)
    inputs = keras.Input(batch_shape=network.input_shape, name=layers[0].name)
    x = inputs
    for layer in layers[1:]:
        cut = slices.get(layer.name, {})
        narrowed = type(layer).from_config(_narrowed_config(layer, cut))
        x = narrowed(x)
        narrowed.set_weights(_narrowed_weights(layer, cut))
    return generator.with_network(keras.Model(inputs, x, name=network.name))


def _copy_network(network):
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def _zero_removed(network, groups, keep):
    """Zeroes, in place, the weights that make the channels not in ``keep`` nonzero."""
    for name, cut in _slices(groups, keep).items():
        layer = network.get_layer(name)
        if "out" not in cut or not (is_kernel_layer(layer) or isinstance(
                layer, keras.layers.BatchNormalization)):
            continue
        removed = np.setdiff1d(np.arange(layer.output_shape[-1]), cut["out"])
        weights = layer.get_weights()
        if is_kernel_layer(layer):
            index = [slice(None)] * weights[0].ndim
            index[output_axis(layer)] = removed
            weights[0][tuple(index)] = 0.0
            vectors = range(1, len(weights))
        else:  # gamma, beta, moving mean; the variance stays positive
            vectors = range(len(weights) - 1)
        for i in vectors:
            weights[i][removed] = 0.0
        layer.set_weights(weights)


def mask_channels(generator, keep):
    """A same-width copy of ``generator`` whose channels not in ``keep`` output exactly zero.

    The producer's kernel slice and bias, and the following BatchNormalization's gamma, beta and
    moving mean are zeroed, so the channel is 0 after BN (in both modes) and after any activation
    with f(0) = 0: the reference that `narrow_channels` must match.

    Args, Raises: as `narrow_channels`.

    Returns:
      A `Generator` with the same architecture as ``generator`` (unchanged).
    """
    copy = _copy_network(generator.network)
    _zero_removed(copy, channel_groups(generator), keep)
    return generator.with_network(copy)


def _flat_outputs(network, name, latents):
    """Inference-mode output of layer ``name`` over ``latents``, as float64 [positions, units]."""
    layer = network.get_layer(name)
    outputs = keras.Model(network.inputs, layer.output)(latents, training=False).numpy()
    return outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)


def _match_statistics(network, reference, consumer, latents):
    """Re-estimates the BN after ``consumer``, or else matches its per-channel output mean and
    std to ``reference``'s with a kernel scale and a bias; in place. Returns what was done."""
    layer = network.get_layer(consumer)
    following = network.layers[network.layers.index(layer) + 1]
    outputs = _flat_outputs(network, consumer, latents)
    if isinstance(following, keras.layers.BatchNormalization):
        following.moving_mean.assign(outputs.mean(axis=0))
        following.moving_variance.assign(outputs.var(axis=0))
        return "bn"
    if not getattr(layer, "use_bias", False):
        return None
    target = _flat_outputs(reference, consumer, latents)
    std = outputs.std(axis=0)
    scale = np.where(std > 1e-6, target.std(axis=0) / np.maximum(std, 1e-6), 1.0)
    shape = [1] * len(layer.kernel.shape)
    shape[output_axis(layer)] = -1
    layer.kernel.assign(layer.kernel.numpy() * scale.reshape(shape).astype(np.float32))
    bias = layer.bias.numpy()
    layer.bias.assign((target.mean(axis=0) - scale * (outputs.mean(axis=0) - bias)).astype(
        np.float32))
    return "mean_std"


def recalibrate_channels(narrowed, generator, latents):
    """Restores the activation statistics that removing channels disturbed.

    A layer that lost input channels outputs less variance and a shifted mean, and the stale
    statistics of the BatchNormalization after it pass that on, down to greyed, low-contrast
    images; a recovery fine-tune starting there can collapse to blank images. In network order,
    each layer that lost inputs gets (1) the BatchNormalization after it re-estimated on
    ``latents`` (adaptive BN, Li et al. ECCV 2020, "EagleEye"), or without one (2) a per-channel
    kernel scale and bias making its output mean and std those of ``generator`` (as in the bias
    correction of Nagel et al. 2019, "Data-Free Quantization").

    Args:
      narrowed: `Generator` from `narrow_channels` of ``generator`` (unchanged).
      generator: the wide `Generator` (same layer names).
      latents: float32 [N, latent_dim].

    Returns:
      The recalibrated narrow `Generator`.
    """
    network = _copy_network(narrowed.network)
    widths = {group.producer: group.channels for group in channel_groups(generator)}
    done = {group.consumer: _match_statistics(network, generator.network, group.consumer,
                                              latents)
            for group in channel_groups(narrowed) if group.channels < widths[group.producer]}
    logging.info("Recalibrated after channel pruning: %s.",
                 ", ".join(f"{name} ({how})" for name, how in done.items()))
    return narrowed.with_network(network)


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
      **options: other `ChannelPruneConfig` fields (``recalibrate``,
        ``calibration_samples``, ``seed``, ``min_channels``, ``channel_multiple``).

    Returns:
      The narrowed `Generator` (not fine-tuned; see `channel_prune_gan`).

    Raises:
      ConfigError: invalid ratio, target or criterion (see `ChannelPruneConfig`).
    """
    config = ChannelPruneConfig(ratio=ratio, macs_target=macs_target, criterion=criterion,
                                **options)
    return narrow_with_config(generator, config, discriminator)


def narrow_with_config(generator, config, discriminator=None):
    """`select_channels`, `narrow_channels`, then optionally `recalibrate_channels`, for a
    `ChannelPruneConfig`; logs the MACs."""
    keep = select_channels(generator, config, discriminator)
    narrowed = narrow_channels(generator, keep)
    if config.recalibrate:
        narrowed = recalibrate_channels(narrowed, generator,
                                        _calibration_latents(generator, config))
    before, after = count_macs(generator)["macs"], count_macs(narrowed)["macs"]
    logging.info("Channel pruning (%s): %s; MACs %d -> %d (%.2fx fewer).", config.criterion,
                 ", ".join(f"{name} {len(k)}" for name, k in keep.items()), before, after,
                 before / max(after, 1))
    return narrowed
