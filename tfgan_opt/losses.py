"""GAN objectives with one signature, and one registry.

Every loss takes logits of shape [B, 1] (or [B]) and returns PER-EXAMPLE losses of shape [B]; the
trainer reduces them with ``tf.nn.compute_average_loss`` so the same code is correct on one device
and under ``tf.distribute`` (where each replica sees a slice of the global batch).

- ``<name>_discriminator_loss(real_logits, fake_logits) -> [B]``
- ``<name>_generator_loss(fake_logits) -> [B]``
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from tfgan_opt.core.errors import ConfigError


def _flat(logits):
    return tf.reshape(logits, [-1])


def non_saturating_discriminator_loss(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))) (Goodfellow et al. 2014), from logits, per example."""
    return tf.nn.softplus(-_flat(real_logits)) + tf.nn.softplus(_flat(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)): the generator loss of Goodfellow et al. 2014 Sec. 3 that does not saturate."""
    return tf.nn.softplus(-_flat(fake_logits))


minimax_discriminator_loss = non_saturating_discriminator_loss


def minimax_generator_loss(fake_logits):
    """log(1 - D(G(z))), the original minimax objective; saturates when D wins early."""
    return -tf.nn.softplus(_flat(fake_logits))


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """D(G(z)) - D(x): the critic loss of WGAN (Arjovsky et al. 2017)."""
    return _flat(fake_logits) - _flat(real_logits)


def wasserstein_generator_loss(fake_logits):
    """-D(G(z)) (Arjovsky et al. 2017)."""
    return -_flat(fake_logits)


def hinge_discriminator_loss(real_logits, fake_logits):
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018)."""
    return tf.nn.relu(1.0 - _flat(real_logits)) + tf.nn.relu(1.0 + _flat(fake_logits))


hinge_generator_loss = wasserstein_generator_loss


def gradient_penalty(discriminator, real_images, fake_images, alpha):
    """Per-example WGAN-GP penalty (||grad_x D(x_hat)||_2 - 1)^2 (Gulrajani et al. 2017).

    Args:
      discriminator: callable images [B, H, W, C] -> logits [B, 1].
      real_images, fake_images: float32 [B, H, W, C].
      alpha: float32 [B], interpolation weights drawn from U[0, 1].

    Returns:
      float32 [B].
    """
    alpha = tf.reshape(alpha, [-1, 1, 1, 1])
    interpolated = real_images + alpha * (fake_images - real_images)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        logits = discriminator(interpolated, training=True)
    grads = tape.gradient(logits, interpolated)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.square(norms - 1.0)


def r1_penalty(discriminator, real_images):
    """Per-example R1 penalty ||grad_x D(x)||^2 on real images (Mescheder et al. 2018, Eq. 9).

    The trainer adds ``r1_weight / 2`` times its mean to the discriminator loss. Unlike WGAN-GP it
    pushes the gradient on the data towards zero, which makes the discriminator's equilibrium
    locally stable for the non-saturating and hinge objectives.

    Args:
      discriminator: callable images [B, H, W, C] -> logits [B, 1].
      real_images: float32 [B, H, W, C] (the images the discriminator sees, augmented if so).

    Returns:
      float32 [B].
    """
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        logits = discriminator(real_images, training=True)
    grads = tape.gradient(logits, real_images)
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def mode_seeking_loss(latents, images, epsilon=1e-5):
    """MSGAN's mode-seeking term (Mao et al. 2019, Eq. 3), to be minimized by the generator.

    The rows are taken in pairs (0, 1), (2, 3), ...; each pair had two latents (and the same class,
    for a conditional generator). The term is ``1 / (d_I / d_z + epsilon)`` with ``d_I`` the mean
    absolute difference of the pairs' images and ``d_z`` that of their latents: it grows when two
    different latents give nearly the same image, the mark of a collapsed mode. An odd last row
    is left out.

    Args:
      latents: float32 [B, latent_dim], what the generator took (without labels).
      images: float32 [B, H, W, C], what it made from them.

    Returns:
      A float32 scalar (per replica: divide by the replica count before summing gradients).
    """
    pairs = (tf.shape(images)[0] // 2) * 2
    image_distance = tf.reduce_mean(tf.abs(images[0:pairs:2] - images[1:pairs:2]))
    latent_distance = tf.reduce_mean(tf.abs(latents[0:pairs:2] - latents[1:pairs:2]))
    return 1.0 / (image_distance / latent_distance + epsilon)


def weight_regularization(kernels, l1=0.0, l2=0.0):
    """l1 * sum|w| + l2 * sum w^2 over ``kernels``; a scalar (0 when both strengths are 0)."""
    total = tf.constant(0.0)
    for kernel in kernels:
        if l1:
            total += l1 * tf.reduce_sum(tf.abs(kernel))
        if l2:
            total += l2 * tf.reduce_sum(tf.square(kernel))
    return total


@dataclasses.dataclass(frozen=True)
class GanLoss:
    """A pair of per-example losses and the critic constraint the objective needs.

    Attributes:
      discriminator_loss: (real_logits, fake_logits) -> [B].
      generator_loss: (fake_logits) -> [B].
      gradient_penalty: add `gradient_penalty` to the discriminator loss (WGAN-GP).
      clip_weights: clip the critic's weights after each update (WGAN).
    """

    discriminator_loss: Callable
    generator_loss: Callable
    gradient_penalty: bool = False
    clip_weights: bool = False


LOSSES = {
    "non_saturating": GanLoss(non_saturating_discriminator_loss, non_saturating_generator_loss),
    "minimax": GanLoss(minimax_discriminator_loss, minimax_generator_loss),
    "wasserstein": GanLoss(wasserstein_discriminator_loss, wasserstein_generator_loss,
                           clip_weights=True),
    "wgan_gp": GanLoss(wasserstein_discriminator_loss, wasserstein_generator_loss,
                       gradient_penalty=True),
    "hinge": GanLoss(hinge_discriminator_loss, hinge_generator_loss),
}


def get_loss(name):
    """Returns the `GanLoss` registered under ``name`` (see `config.LOSS_NAMES`)."""
    if name not in LOSSES:
        raise ConfigError(f"loss={name!r} is not one of {', '.join(LOSSES)}")
    return LOSSES[name]
