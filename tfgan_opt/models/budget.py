"""Memory a configuration needs, computed from its shapes before any network is built.

``--width=200000`` or ``--image_size=10000`` would otherwise fail deep inside TensorFlow with an
out-of-memory traceback (or swap the machine to a halt) after the run directory was prepared. The
estimate counts each architecture's weights and per-example activations in closed form (a test
checks the weight counts against the built networks) and is compared with the machine's RAM.
"""

import os

from tfgan_opt.core.errors import ConfigError

_K = 5  # the DCGAN kernel size
# float32 copies of every weight while training: weights, gradients, two Adam moments, an EMA.
_WEIGHT_COPIES = 5
# Activations kept for the backward pass, their gradients, and the discriminator's passes over
# real and fake batches: a generous multiple of one forward pass.
_ACTIVATION_COPIES = 6
_BYTES = 4


def _dcgan(config):
    s, w, dw, c, z = (config.image_size // 4, config.width, config.discriminator_width,
                      config.channels, config.latent_dim)
    side = config.image_size
    generator = (z * s * s * 4 * w + 4 * s * s * 4 * w + _K * _K * 4 * w * 2 * w + 4 * 2 * w
                 + _K * _K * 2 * w * w + 4 * w + _K * _K * w * c + c)
    discriminator = (_K * _K * c * dw + dw + _K * _K * dw * 2 * dw + 2 * dw
                     + s * s * 2 * dw + 1)
    activations = (3 * s * s * 4 * w + 3 * s * s * 2 * w + 3 * (2 * s) ** 2 * w
                   + 2 * side * side * c + 2 * (side // 2) ** 2 * dw + 2 * s * s * 2 * dw)
    return generator, discriminator, activations


def _mlp(config):
    w, dw, z = config.width, config.discriminator_width, config.latent_dim
    pixels = config.image_size ** 2 * config.channels
    generator = (z * 4 * w + 4 * w * 8 * w + 8 * w * 16 * w + 4 * (4 + 8 + 16) * w
                 + 16 * w * pixels + pixels)
    discriminator = (pixels * 16 * dw + 16 * dw + 16 * dw * 8 * dw + 8 * dw + 8 * dw * 4 * dw
                     + 4 * dw + 4 * dw + 1)
    activations = 3 * 28 * w + 2 * pixels + 2 * 28 * dw + pixels
    return generator, discriminator, activations


_ESTIMATORS = {"dcgan": _dcgan, "mlp": _mlp}


def count_weights(config):
    """(generator weights, discriminator weights, activations per example) of a `ModelConfig`
    (spectral normalization's power-iteration vectors are left out: a few per layer)."""
    return _ESTIMATORS[config.arch](config)


def training_bytes(config, batch_size):
    """Estimated peak bytes of training ``config`` at ``batch_size``."""
    generator, discriminator, activations = count_weights(config)
    return _BYTES * (_WEIGHT_COPIES * (generator + discriminator)
                     + _ACTIVATION_COPIES * batch_size * activations)


def machine_bytes():
    """Physical memory of this machine in bytes (None if the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(config, batch_size, available=None):
    """Raises `ConfigError` if training ``config`` at ``batch_size`` needs more than ``available``
    bytes (default: this machine's RAM)."""
    available = machine_bytes() if available is None else available
    needed = training_bytes(config, batch_size)
    if available and needed > available:
        generator, discriminator, _ = count_weights(config)
        raise ConfigError(
            f"this model needs about {needed / 2**30:.1f} GiB to train ({generator + discriminator:,} "
            f"weights, image_size={config.image_size}, width={config.width}, "
            f"discriminator_width={config.discriminator_width}, batch_size={batch_size}) but the "
            f"machine has {available / 2**30:.1f} GiB; use a smaller width, image_size or batch_size")
