"""The classic fully connected MNIST GAN (Goodfellow et al. 2014), with BN in the generator.

Generator: Dense(4w) -> Dense(8w) -> Dense(16w), each BN + LeakyReLU, then Dense(H*W*C) -> tanh ->
reshape. Discriminator: flatten -> Dense(16w) -> Dense(8w) -> Dense(4w) (layer ``features``),
each LeakyReLU, then Dense(1).
"""

from tfgan_opt.core.compat import keras
from tfgan_opt.models import conditional
from tfgan_opt.models.layers import SpectralNormalization
from tfgan_opt.models.base import FEATURES_LAYER


def _init(seed, offset):
    return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)


def build_mlp_generator_network(config, seed=None, sync_batch_norm=False):
    """Builds the Functional MLP generator: [B, latent_dim] -> [B, H, W, C] in [-1, 1].

    ``sync_batch_norm``: as in `build_dcgan_generator_network`. Conditional: [z, label] -> images
    (`tfgan_opt.models.conditional`).
    """
    w = config.width
    z, x = conditional.generator_inputs(config, seed)
    for i, units in enumerate([4 * w, 8 * w, 16 * w], start=1):
        x = keras.layers.Dense(units, use_bias=False, kernel_initializer=_init(seed, i),
                               name=f"dense{i}")(x)
        x = keras.layers.BatchNormalization(synchronized=sync_batch_norm, name=f"dense{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"dense{i}_act")(x)
    shape = (config.image_size, config.image_size, config.channels)
    x = keras.layers.Dense(shape[0] * shape[1] * shape[2], kernel_initializer=_init(seed, 4),
                           name="to_image")(x)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    image = keras.layers.Reshape(shape, name="reshape")(x)
    return keras.Model(z, image, name="mlp_generator")


def build_mlp_discriminator_network(config, seed=None):
    """Builds the Functional MLP discriminator: [B, H, W, C] -> logits [B, 1]."""
    w = config.discriminator_width
    images = keras.Input((config.image_size, config.image_size, config.channels), name="images")
    x = keras.layers.Flatten(name="flatten")(images)
    units = [16 * w, 8 * w, 4 * w]
    for i, n in enumerate(units, start=1):
        dense = keras.layers.Dense(n, kernel_initializer=_init(seed, 10 + i), name=f"dense{i}")
        if config.spectral_norm:
            dense = SpectralNormalization(dense, name=f"dense{i}_sn")
        x = dense(x)
        name = FEATURES_LAYER if i == len(units) else f"dense{i}_act"
        x = keras.layers.LeakyReLU(0.2, name=name)(x)
    logits = keras.layers.Dense(1, kernel_initializer=_init(seed, 20), name="logits")
    if config.spectral_norm:
        logits = SpectralNormalization(logits, name="logits_sn")
    inputs, outputs = conditional.discriminator_outputs(config, images, x, logits(x), seed)
    return keras.Model(inputs, outputs, name="mlp_discriminator")
