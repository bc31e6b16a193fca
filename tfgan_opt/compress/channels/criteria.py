"""Channel importance criteria for structured pruning, with one signature and one registry.

Every criterion is ``fn(generator, groups, latents, discriminator) -> {producer name: float64
[C]}``: a score per channel of each `channel_graph.ChannelGroup`, larger = more important. Scores
rank channels within a group; they are not comparable across groups.

- ``l1``: L1 norm of each output filter (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
- ``bn_scale``: |gamma| of the BatchNormalization after the producer (Liu et al. 2017, "Network
  Slimming"; the criterion of GAN Slimming, Wang et al. 2020).
- ``activation``: mean |activation| over a batch of z (data-aware).
- ``taylor``: |a * dL/da| with L the discriminator's generator loss (Molchanov et al. 2017).
"""

import numpy as np
import tensorflow as tf

from tfgan_opt.compress.channels.graph import output_axis
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.losses import non_saturating_generator_loss

def _per_channel(values, axis, group):
    """Sums |values| over all axes but ``axis`` (producer units), then over each channel's units."""
    units = np.sum(np.abs(np.moveaxis(values, axis, -1)).reshape(-1, values.shape[axis]), axis=0)
    return units.reshape(group.positions, group.channels).sum(axis=0).astype(np.float64)


def l1_importance(generator, groups, latents=None, discriminator=None):
    """L1 norm of each output channel's filter (Li et al. 2017, "Pruning Filters")."""
    del latents, discriminator
    network = generator.network
    return {g.producer: _per_channel(network.get_layer(g.producer).kernel.numpy(),
                                     output_axis(network.get_layer(g.producer)), g)
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
