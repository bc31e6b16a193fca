"""Structured channel pruning: whole channels go, so the generator gets faster, not only smaller.

Zeroing single weights shrinks a file but not its latency: TFLite's CPU kernels are dense (an
80%-sparse int8 DCGAN generator ran slower than the dense one). Removing whole output channels of a
layer, with the matching input channels of the next one, gives a narrower network of standard
layers that every runtime speeds up on (GAN Compression, Li et al. CVPR 2020; GAN Slimming, Wang
et al. ECCV 2020; Content-Aware GAN Compression, Liu et al. CVPR 2021).

Which channels can go together (`channel_groups`, from the network's channel dependency graph,
`channels.depgraph`: any Functional or Sequential network; project/up1/up2 of dcgan, dense1..3 of
mlp; never the image channels) and what a forward pass costs (`count_macs`) are in
`channels.graph`; the importance criteria (`CRITERIA`) in `channels.criteria`; rebuilding the
narrower network in `channels.rebuild`. This module selects channels and removes them;
`tfgan_opt.pipeline.finetune.channel_prune_gan` fine-tunes the result.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.compress.channels import rebuild
from tfgan_opt.compress.channels.criteria import CRITERIA
from tfgan_opt.compress.channels.depgraph import producer_axes
from tfgan_opt.compress.channels.graph import (channel_graph, channel_groups, count_macs,
                                               macs_with_counts)
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


def _counts_for_macs(generator, graph, config):
    """Kept channel counts of the smallest uniform ratio whose MACs fit ``macs_target``."""
    groups = graph.groups
    budget = config.macs_target * count_macs(generator)["macs"]
    low, high = 0.0, 1.0 - 1e-9  # MACs fall (weakly) as the ratio grows: bisect on it
    if macs_with_counts(generator, groups, _counts_for_ratio(groups, high, config),
                        graph) > budget:
        raise ConfigError(f"macs_target={config.macs_target} is out of reach: even "
                          f"min_channels={config.min_channels} in every layer costs more")
    for _ in range(40):
        middle = (low + high) / 2
        counts = _counts_for_ratio(groups, middle, config)
        if macs_with_counts(generator, groups, counts, graph) <= budget:
            high = middle
        else:
            low = middle
    return _counts_for_ratio(groups, high, config)


def _calibration_latents(generator, config):
    return generator.sample_latents(config.calibration_samples, config.seed)


def select_channels(generator, config, discriminator=None):
    """Scores the channels of every group and keeps the most important ones.

    Args:
      generator: `Generator` with a plain network (no pruning/QAT wrappers).
      config: `ChannelPruneConfig`.
      discriminator: `Discriminator`, needed by the ``taylor`` criterion.

    Returns:
      A dict producer name -> sorted int64 indices [k] of the channels to keep.

    Raises:
      ConfigError: a layer in ``config.ratio`` is not prunable, the MACs target cannot be met, or
        the criterion cannot score this generator.
    """
    graph = channel_graph(generator)
    groups = graph.groups
    if not groups:
        raise ConfigError(f"{generator.network.name} has no prunable channels "
                          f"({_blocked_summary(graph)})")
    if config.ratio is not None:
        counts = _counts_for_ratio(groups, config.ratio, config)
    else:
        counts = _counts_for_macs(generator, graph, config)
    scores = CRITERIA[config.criterion](generator, groups, _calibration_latents(generator, config),
                                        discriminator)
    return {g.producer: np.sort(np.argsort(-scores[g.producer], kind="stable")[:counts[g.producer]])
            for g in groups}


# ------------------------------------------------------------------------------------------------
# Removal


def _blocked_summary(graph):
    blocked = [f"{name} {why}" for name, why in graph.blocked.items()]
    return "; ".join(blocked[:3]) if blocked else "every channel reaches the input or output"


def _checked_keep(graph, keep):
    """``keep`` as sorted int64 arrays, after checking it names groups and valid channels."""
    by_producer = {g.producer: g for g in graph.groups}
    unknown = sorted(set(keep) - set(by_producer))
    if unknown:
        raise ConfigError(f"cannot remove channels of {', '.join(unknown)}: not prunable layers "
                          f"(prunable: {', '.join(by_producer) or 'none'})")
    checked = {}
    for name, channels in keep.items():
        group, channels = by_producer[name], np.asarray(channels, np.int64)
        if (not len(channels) or channels.min() < 0 or channels.max() >= group.channels
                or len(np.unique(channels)) != len(channels)):
            raise ConfigError(f"channels to keep of {name} must be a non-empty subset of "
                              f"0..{group.channels - 1}, each index once")
        checked[name] = np.sort(channels)
    return checked


def narrow_channels(generator, keep):
    """Builds the narrower generator that keeps only ``keep``'s channels.

    Args:
      generator: `Generator` with a plain Functional or Sequential network (unchanged).
      keep: dict group producer -> indices of its channels to keep (groups not named keep all).

    Returns:
      A `Generator` of the same class around a new network of the same standard layers, names
      and input/output shapes, with fewer channels. In inference mode it computes what
      `mask_channel_outputs(generator, keep)` computes.

    Raises:
      ConfigError: ``keep`` names a layer that is not prunable, or an invalid channel.
    """
    graph = channel_graph(generator)
    return generator.with_network(rebuild.narrow_network(graph, _checked_keep(graph, keep)))


def mask_channel_outputs(generator, keep):
    """The reference `narrow_channels` must match: a same-width copy of ``generator`` whose
    removed channels are multiplied by zero after every layer (`rebuild.mask_network`).

    Returns:
      A `Generator` (for comparisons; its network holds a masking layer and is not saved).
    """
    graph = channel_graph(generator)
    return generator.with_network(rebuild.mask_network(graph, _checked_keep(graph, keep)))


def _copy_network(network):
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def mask_channels(generator, keep):
    """A same-width copy of ``generator`` whose channels not in ``keep`` output exactly zero.

    The producers' kernel slices and biases, and the group's BatchNormalization gamma, beta and
    moving mean are zeroed, so the channel is 0 after BN (in both modes) and after any activation
    with f(0) = 0: a plain network the criteria can score (`mask_channel_outputs` is the
    reference for any activation).

    Args, Raises: as `narrow_channels`.

    Returns:
      A `Generator` with the same architecture as ``generator`` (unchanged).
    """
    graph = channel_graph(generator)
    keep = _checked_keep(graph, keep)
    copy = _copy_network(generator.network)
    rebuild.zero_weights(copy, graph.groups, keep)
    return generator.with_network(copy)


def _flat_outputs(network, name, latents):
    """Inference-mode output of layer ``name`` over ``latents``, as float64 [positions, units]."""
    layer = network.get_layer(name)
    outputs = keras.Model(network.inputs, layer.output)(latents, training=False).numpy()
    return outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)


def _following_layers(network, layer):
    return [other for other in network.layers
            if any(t is layer.output for t in tf.nest.flatten(other.input))]


def _match_statistics(network, reference, consumer, latents, kept_out):
    """Re-estimates the BN after ``consumer``, or else matches its per-channel output mean and
    std to ``reference``'s with a kernel scale and a bias; in place. Returns what was done."""
    layer = network.get_layer(consumer)
    following = _following_layers(network, layer)
    outputs = _flat_outputs(network, consumer, latents)
    if len(following) == 1 and isinstance(following[0], keras.layers.BatchNormalization):
        following[0].moving_mean.assign(outputs.mean(axis=0))
        following[0].moving_variance.assign(outputs.var(axis=0))
        return "bn"
    if not getattr(layer, "use_bias", False):
        return None
    target = _flat_outputs(reference, consumer, latents)
    if kept_out is not None:  # the consumer lost output channels too
        target = target[:, kept_out]
    if target.shape != outputs.shape:
        return None
    std = outputs.std(axis=0)
    scale = np.where(std > 1e-6, target.std(axis=0) / np.maximum(std, 1e-6), 1.0)
    kernel = layer.pointwise_kernel if type(layer) is keras.layers.SeparableConv2D else layer.kernel
    shape = [1] * len(kernel.shape)
    shape[producer_axes(layer)[1] if producer_axes(layer) else 3] = -1
    kernel.assign(kernel.numpy() * scale.reshape(shape).astype(np.float32))
    bias = layer.bias.numpy()
    layer.bias.assign((target.mean(axis=0) - scale * (outputs.mean(axis=0) - bias)).astype(
        np.float32))
    return "mean_std"


def recalibrate_channels(narrowed, generator, latents, keep=None):
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
      latents: float32 [N, latent_dim] (or inputs of the generator's input shape).
      keep: the dict ``narrowed`` was made with (`select_channels`); needed to match the
        statistics of a layer that lost output channels as well (else it is left as is).

    Returns:
      The recalibrated narrow `Generator`.
    """
    network = _copy_network(narrowed.network)
    widths = {group.producer: group.channels for group in channel_groups(generator)}
    consumers = {name for group in channel_groups(narrowed)
                 if group.channels < widths[group.producer] for name in group.consumers}
    graph = channel_graph(generator) if keep is not None else None
    done = {layer.name: _match_statistics(
        network, generator.network, layer.name, latents,
        graph.kept_units(layer.name, "out", keep) if graph else None)
        for layer in network.layers if layer.name in consumers}
    logging.info("Recalibrated after channel pruning: %s.",
                 ", ".join(f"{name} ({how})" for name, how in done.items()))
    return narrowed.with_network(network)


def channel_prune(generator, ratio=None, *, macs_target=None, criterion="l1", discriminator=None,
                  **options):
    """Removes the least important channels of a generator: a narrower, faster `Generator`.

    Args:
      generator: trained `Generator` around any plain Functional or Sequential network (dcgan,
        mlp, or your own; BN folded or not), unchanged.
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
    probe = _calibration_latents(generator, config)[:8]
    error = rebuild.check_narrowed(narrowed, mask_channel_outputs(generator, keep), probe,
                                   generator.network.name)
    logging.info("Narrowed network matches the masked one within %.2g.", error)
    if config.recalibrate:
        narrowed = recalibrate_channels(narrowed, generator,
                                        _calibration_latents(generator, config), keep)
    before, after = count_macs(generator)["macs"], count_macs(narrowed)["macs"]
    logging.info("Channel pruning (%s): %s; MACs %d -> %d (%.2fx fewer).", config.criterion,
                 ", ".join(f"{name} {len(k)}" for name, k in keep.items()), before, after,
                 before / max(after, 1))
    return narrowed
