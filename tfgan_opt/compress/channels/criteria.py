"""Channel importance criteria for structured pruning, with one signature and one registry.

Every criterion is ``fn(generator, groups, latents, discriminator) -> {producer name: float64
[C]}``: a score per channel of each `depgraph.ChannelGroup`, larger = more important. Scores
rank channels within a group; they are not comparable across groups.

- ``l1``: L1 norm of each output filter (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
- ``bn_scale``: |gamma| of the BatchNormalization after the producer (Liu et al. 2017, "Network
  Slimming"; the criterion of GAN Slimming, Wang et al. 2020).
- ``activation``: mean |activation| over a batch of z (data-aware).
- ``taylor``: |a * dL/da| with L the discriminator's generator loss (Molchanov et al. 2017).
"""

import numpy as np
import tensorflow as tf

from tfgan_opt.compress.channels.depgraph import producer_axes
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.losses import non_saturating_generator_loss


def _to_channels(unit_scores, member, channels, average=False):
    """Per-unit scores [..., units] of one layer -> per-channel [..., C] for a group member:
    summed over the units of each channel (its positions), or averaged."""
    out = np.zeros(unit_scores.shape[:-1] + (channels,), np.float64)
    np.add.at(out.T, member.channels, np.moveaxis(unit_scores[..., member.units], -1, 0))
    if average:
        out /= np.bincount(member.channels, minlength=channels)
    return out


def _output_filter_norms(layer):
    """L1 norm of each output unit's filter, float [units]."""
    if type(layer) is keras.layers.SeparableConv2D:
        kernel, axis = layer.pointwise_kernel.numpy(), 3
    else:
        kernel, axis = layer.kernel.numpy(), producer_axes(layer)[1] % layer.kernel.shape.rank
    return np.abs(np.moveaxis(kernel, axis, -1)).reshape(-1, kernel.shape[axis]).sum(axis=0)


def l1_importance(generator, groups, latents=None, discriminator=None):
    """L1 norm of each output channel's filter, summed over the group's producers (Li et al.
    2017, "Pruning Filters")."""
    del latents, discriminator
    network = generator.network
    return {g.producer: sum(_to_channels(_output_filter_norms(network.get_layer(m.layer)), m,
                                         g.channels)
                            for m in g.members if m.side == "out") for g in groups}


def bn_scale_importance(generator, groups, latents=None, discriminator=None):
    """|gamma| of the group's BatchNormalization layers (mean over them and over a channel's
    positions; Liu et al. 2017, "Network Slimming"; the GAN Slimming criterion)."""
    del latents, discriminator
    scores = {}
    for group in groups:
        norms = [(generator.network.get_layer(m.layer), m) for m in group.members
                 if m.side == "in" and isinstance(generator.network.get_layer(m.layer),
                                                  keras.layers.BatchNormalization)]
        norms = [(n, m) for n, m in norms if n.scale]
        if not norms:
            raise ConfigError(f"criterion 'bn_scale' needs a BatchNormalization with a scale after "
                              f"{group.producer} (was the generator BN-folded?); use 'l1', "
                              f"'activation' or 'taylor'")
        scores[group.producer] = np.mean([_to_channels(np.abs(n.gamma.numpy()), m,
                                                       group.channels, average=True)
                                          for n, m in norms], axis=0)
    return scores


def _consumer_inputs(generator, groups):
    """(model z -> [consumer inputs..., image], [(group, member) per consumer input])."""
    network, tensors, members = generator.network, [], []
    for group in groups:
        for member in group.members:
            if member.side == "in" and member.layer in group.consumers:
                tensors.append(network.get_layer(member.layer).input)
                members.append((group, member))
    return keras.Model(network.inputs, tensors + [network.output]), members


def activation_importance(generator, groups, latents, discriminator=None):
    """Mean |activation| of each channel where the consumers read it, over a batch of z (a
    data-aware criterion: a channel the latents rarely excite contributes little)."""
    del discriminator
    probe, members = _consumer_inputs(generator, groups)
    outputs = probe(latents, training=False)[:-1]
    scores = {g.producer: [] for g in groups}
    for (group, member), a in zip(members, outputs):
        a = np.abs(a.numpy()).reshape(-1, a.shape[-1]).mean(axis=0)
        scores[group.producer].append(_to_channels(a, member, group.channels, average=True))
    return {name: np.mean(values, axis=0) for name, values in scores.items()}


def taylor_importance(generator, groups, latents, discriminator):
    """First-order Taylor estimate of the generator loss change when a channel is removed:
    mean over z of |sum over positions of a * dL/da|, L the discriminator's non-saturating
    generator loss (Molchanov et al. 2017, "Pruning CNNs for resource efficient inference");
    summed over the group's consumers."""
    if discriminator is None:
        raise ConfigError("criterion 'taylor' needs the discriminator")
    probe, members = _consumer_inputs(generator, groups)
    # A conditional generator's latents are (z, labels): the discriminator judges each image with
    # the label it was generated for.
    conditional = isinstance(latents, (tuple, list))
    inputs = ([tf.convert_to_tensor(x) for x in latents] if conditional
              else tf.convert_to_tensor(latents))
    count = int((inputs[0] if conditional else inputs).shape[0])
    with tf.GradientTape() as tape:
        outputs = probe(inputs, training=False)
        critic_input = (outputs[-1], inputs[1]) if conditional else outputs[-1]
        loss = tf.reduce_mean(non_saturating_generator_loss(
            discriminator(critic_input, training=False)))
    gradients = tape.gradient(loss, outputs[:-1])
    scores = {g.producer: 0.0 for g in groups}
    for (group, member), a, g in zip(members, outputs[:-1], gradients):
        product = (a * g).numpy().reshape(count, -1, a.shape[-1]).sum(axis=1)
        scores[group.producer] = scores[group.producer] + np.mean(np.abs(
            _to_channels(product, member, group.channels)), axis=0)
    return scores


CRITERIA = {
    "l1": l1_importance,
    "bn_scale": bn_scale_importance,
    "activation": activation_importance,
    "taylor": taylor_importance,
}
