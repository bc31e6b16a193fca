"""DCGAN networks (Radford et al. 2016), after the TensorFlow DCGAN tutorial.

Generator: Dense -> BN -> LeakyReLU -> reshape to (s, s, 4w) with s = image_size / 4, then
Conv2DTranspose(2w, stride 1) -> BN -> LeakyReLU -> Conv2DTranspose(w, stride 2) -> BN ->
LeakyReLU -> Conv2DTranspose(channels, stride 2) -> tanh. With ``upsample`` ``nearest`` or
``bilinear`` each Conv2DTranspose becomes a resize-convolution (Odena et al. 2016): stride 2 is
UpSampling2D(2) (layer ``<name>_resize``) then Conv2D, stride 1 a Conv2D, under the same names, so
the compression stages see an ordinary chain of Conv2D layers. Every layer has a stable name so that
compression stages (BN folding, channel pruning) can find it.

Discriminator: two strided Conv2D -> LeakyReLU blocks, flatten (layer ``features``), Dense(1).
"""

from tfgan_opt.core.compat import keras
from tfgan_opt.models import conditional
from tfgan_opt.models.layers import SpectralNormalization
from tfgan_opt.models.base import FEATURES_LAYER

_KERNEL = 5


def _init(seed, offset):
    # Seeded per layer so that a fixed seed gives identical weights in every process.
    return keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + offset)


def build_dcgan_generator_network(config, seed=None, sync_batch_norm=False):
    """Builds the Functional DCGAN generator network.

    Args:
      config: `ModelConfig` with arch ``dcgan``.
      seed: optional int seeding the kernel initializers.
      sync_batch_norm: batch statistics over the global batch of all replicas of a
        ``tf.distribute`` strategy instead of each replica's slice. On one device the statistics
        are the same up to float rounding (a one-pass variance instead of the fused kernel).

    Returns:
      A Functional keras.Model: float32 [B, latent_dim] -> [B, image_size, image_size, channels]
      (conditional: [z, label int32 [B]] -> images, see `tfgan_opt.models.conditional`).
    """
    side = config.image_size // 4
    w = config.width
    z, x = conditional.generator_inputs(config, seed)
    x = keras.layers.Dense(side * side * 4 * w, use_bias=False, kernel_initializer=_init(seed, 0),
                           name="project")(x)
    x = keras.layers.BatchNormalization(synchronized=sync_batch_norm, name="project_bn")(x)
    x = keras.layers.LeakyReLU(0.2, name="project_act")(x)
    x = keras.layers.Reshape((side, side, 4 * w), name="reshape")(x)
    for i, (filters, stride) in enumerate([(2 * w, 1), (w, 2)], start=1):
        x = _upsampling_conv(x, config.upsample, filters, stride, use_bias=False,
                             kernel_initializer=_init(seed, i), name=f"up{i}")
        x = keras.layers.BatchNormalization(synchronized=sync_batch_norm, name=f"up{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"up{i}_act")(x)
    x = _upsampling_conv(x, config.upsample, config.channels, 2, use_bias=True,
                         kernel_initializer=_init(seed, 3), name="to_image")
    image = keras.layers.Activation("tanh", name="tanh")(x)
    return keras.Model(z, image, name="dcgan_generator")


def _upsampling_conv(x, upsample, filters, stride, name, **kwargs):
    """A Conv2DTranspose of ``stride``, or its resize-convolution (see the module docstring)."""
    if upsample == "transpose":
        return keras.layers.Conv2DTranspose(filters, _KERNEL, strides=stride, padding="same",
                                            name=name, **kwargs)(x)
    if stride > 1:
        x = keras.layers.UpSampling2D(stride, interpolation=upsample, name=f"{name}_resize")(x)
    return keras.layers.Conv2D(filters, _KERNEL, padding="same", name=name, **kwargs)(x)


def build_dcgan_discriminator_network(config, seed=None):
    """Builds the Functional DCGAN discriminator: [B, H, W, C] in [-1, 1] -> logits [B, 1]
    (conditional: [images, label] -> projection logits, see `tfgan_opt.models.conditional`)."""
    w = config.discriminator_width
    images = keras.Input((config.image_size, config.image_size, config.channels), name="images")
    x = images
    for i, filters in enumerate([w, 2 * w]):
        conv = keras.layers.Conv2D(filters, _KERNEL, strides=2, padding="same",
                                   kernel_initializer=_init(seed, 10 + i), name=f"down{i + 1}")
        x = _maybe_spectral(conv, config)(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_act")(x)
    x = keras.layers.Flatten(name=FEATURES_LAYER)(x)
    logits = _maybe_spectral(keras.layers.Dense(1, kernel_initializer=_init(seed, 12),
                                                name="logits"), config)(x)
    inputs, outputs = conditional.discriminator_outputs(config, images, x, logits, seed)
    return keras.Model(inputs, outputs, name="dcgan_discriminator")


def _maybe_spectral(layer, config):
    if not config.spectral_norm:
        return layer
    return SpectralNormalization(layer, name=f"{layer.name}_sn")
