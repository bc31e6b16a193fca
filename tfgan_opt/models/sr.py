"""Image-to-image networks: a compact super-resolution generator, a pix2pix U-Net and a PatchGAN
discriminator, each a Functional network inside the subclassed `Generator` / `Discriminator`.

* `build_sr_generator_network`: SRResNet/ESRGAN in spirit, phone-sized (Ledig et al. 2017;
  Wang et al. 2018): a conv, residual blocks without batch norm (ESRGAN drops BN: it causes
  artifacts and costs an op on the phone), a long skip, then sub-pixel upsampling (Shi et al. 2016,
  ESPCN: a conv to ``r^2 * C`` channels then ``depth_to_space``) in x2 stages, and the bilinear
  upsampled input added to the output, so the network learns only the missing detail.
* `build_unet_generator_network`: pix2pix's U-Net (Isola et al. 2017) at small widths: strided
  convs down, transposed convs up, skip concatenations, plus the input (same-size restoration).
* `build_patchgan_discriminator_network`: pix2pix's PatchGAN: a logit per overlapping patch,
  [B, h/8, w/8, 1] (losses average over patches).

All take any H and W (multiples of 8 for the U-Net): inputs are [B, None, None, 3] in [-1, 1]. The
outputs are not squashed by tanh (the residual design needs a linear output); metrics clip.
"""

import numpy as np
import tensorflow as tf

from tfgan_opt.core.compat import keras
from tfgan_opt.core.keras_files import load_keras_model
from tfgan_opt.models.base import Discriminator, Generator, _custom_objects

L = keras.layers


@keras.utils.register_keras_serializable(package="tfgan_opt")
class DepthToSpace(L.Layer):
    """``tf.nn.depth_to_space`` as a layer: [B, H, W, r*r*C] -> [B, r*H, r*W, C].

    Output channel c at sub-position (i, j) is input channel (i * r + j) * C + c (the DCR order of
    TFLite's DEPTH_TO_SPACE), so the input's channels are r*r repetitions of the output's: channel
    pruning ties them in groups of r*r (`tfgan_opt.compress.channels.depgraph`). A registered layer
    rather than a ``Lambda``, so files holding it load with ``safe_mode``.
    """

    def __init__(self, block_size, **kwargs):
        super().__init__(**kwargs)
        if int(block_size) < 2:
            raise ValueError(f"block_size={block_size} must be at least 2")
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        r = self.block_size
        scaled = [None if d is None else d * r for d in shape[1:3]]
        return tf.TensorShape([shape[0]] + scaled + [shape[3] // (r * r)])

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


class ImageGenerator(Generator):
    """A `Generator` whose input is an image: [B, h, w, 3] in [-1, 1] -> [B, s*h, s*w, 3].

    `sample_latents` (what compression stages calibrate on when they have nothing better) gives
    smooth random images of ``calibration_size`` pixels instead of white noise.
    """

    calibration_size = 16

    @property
    def scale(self):
        """Output pixels per input pixel (measured on a probe, as the network allows any size)."""
        probe = np.zeros((1, 8, 8, 3), np.float32)
        return int(self.network(probe, training=False).shape[1]) // 8

    def sample_latents(self, num, seed=0):
        side = self.calibration_size
        shape = [None if d is None else int(d) for d in self.network.input_shape[1:3]]
        height, width = (side if d is None else d for d in shape)
        rng = np.random.default_rng(seed)
        coarse = rng.uniform(-1, 1, (num, max(1, height // 4), max(1, width // 4), 3))
        return tf.image.resize(coarse.astype(np.float32), (height, width), "bicubic").numpy().clip(-1, 1)


def at_size(generator, height=None, width=None):
    """The same generator (same layers, names and weights) with a fixed input size, or with any
    size for ``None``: MAC counts need static shapes, training and tiling do not.

    Args:
      generator: `ImageGenerator` with a plain or QAT network.
      height, width: input side(s) (``width`` defaults to ``height``).

    Returns:
      A new `ImageGenerator`; ``generator`` is unchanged.
    """
    width = height if width is None else width
    network = generator.network
    inputs = keras.Input((height, width, int(network.input_shape[-1])),
                         name=network.input_names[0])
    clone = keras.models.clone_model(
        network, input_tensors=inputs,
        clone_function=lambda layer: type(layer).from_config(layer.get_config()))
    clone.set_weights(network.get_weights())
    return generator.with_network(clone)


def _conv(filters, name, kernel=3, strides=1, activation=None, seed=None, small=False):
    # ``small``: the last conv of a residual branch starts near zero (ESRGAN's scaled init), so
    # the untrained network is close to its skip path (bilinear upsampling, identity).
    init = (keras.initializers.VarianceScaling(0.01, seed=seed) if small else
            keras.initializers.HeNormal(seed=seed))
    return L.Conv2D(filters, kernel, strides, padding="same", activation=activation,
                    kernel_initializer=init, name=name)


def build_sr_generator_network(scale=4, width=32, blocks=4, upsample_width=None, seed=None):
    """The compact super-resolution network (see the module docstring).

    Args:
      scale: 2 or 4 (x2 sub-pixel stages).
      width: channels of the residual trunk.
      blocks: residual blocks (conv-ReLU-conv + identity).
      upsample_width: channels entering each depth_to_space stage (default ``width // 2``).
      seed: initializer seed.

    Returns:
      Functional keras.Model float32 [B, h, w, 3] -> [B, scale*h, scale*w, 3].
    """
    if scale not in (2, 4):
        raise ValueError(f"scale={scale} must be 2 or 4")
    upsample_width = upsample_width or max(4, width // 2)
    inputs = keras.Input((None, None, 3), name="low_res")
    head = _conv(width, "head", seed=seed)(inputs)
    x = head
    for index in range(blocks):
        y = _conv(width, f"block{index}_conv1", activation="relu", seed=seed)(x)
        y = _conv(width, f"block{index}_conv2", seed=seed, small=True)(y)
        x = L.Add(name=f"block{index}_add")([x, y])
    x = _conv(width, "trunk_out", seed=seed)(x)
    x = L.Add(name="long_skip")([x, head])
    stages = int(np.log2(scale))
    for stage in range(stages):
        last = stage == stages - 1
        x = _conv(4 * (3 if last else upsample_width), f"upsample{stage}_conv", seed=seed,
                  small=last)(x)
        x = DepthToSpace(2, name=f"upsample{stage}_shuffle")(x)
        if not last:
            x = L.ReLU(name=f"upsample{stage}_relu")(x)
    skip = L.UpSampling2D(scale, interpolation="bilinear", name="input_upsampled")(inputs)
    outputs = L.Add(name="high_res")([x, skip])
    return keras.Model(inputs, outputs, name="sr_generator")


def build_unet_generator_network(width=16, depth=3, seed=None):
    """A small pix2pix U-Net with an input skip: [B, H, W, 3] -> [B, H, W, 3], H and W multiples
    of 2**depth.

    Args:
      width: channels at full resolution (doubling per level).
      depth: downsampling levels.
      seed: initializer seed.
    """
    inputs = keras.Input((None, None, 3), name="degraded")
    x = _conv(width, "enc0", activation="relu", seed=seed)(inputs)
    skips = [x]
    for level in range(1, depth + 1):
        x = _conv(width * 2 ** level, f"enc{level}", 4, 2, seed=seed)(x)
        x = L.LeakyReLU(0.2, name=f"enc{level}_act")(x)
        if level < depth:
            skips.append(x)
    for level in reversed(range(depth)):
        x = L.Conv2DTranspose(width * 2 ** level, 4, 2, padding="same", name=f"dec{level}",
                              kernel_initializer=keras.initializers.HeNormal(seed=seed))(x)
        x = L.ReLU(name=f"dec{level}_act")(x)
        x = L.Concatenate(name=f"dec{level}_skip")([x, skips[level]])
        x = _conv(width * 2 ** level, f"dec{level}_fuse", activation="relu", seed=seed)(x)
    x = _conv(3, "to_image", seed=seed, small=True)(x)
    outputs = L.Add(name="restored")([x, inputs])
    return keras.Model(inputs, outputs, name="unet_generator")


def build_patchgan_discriminator_network(width=32, layers=3, seed=None):
    """pix2pix's PatchGAN: [B, H, W, 3] -> patch logits [B, H/2**layers, W/2**layers, 1].

    Spectral norm is left out (QAT/pruning never touch the discriminator; simplicity wins).
    """
    inputs = keras.Input((None, None, 3), name="image")
    x = inputs
    for index in range(layers):
        x = _conv(width * 2 ** index, f"patch{index}", 4, 2, seed=seed)(x)
        x = L.LeakyReLU(0.2, name=f"patch{index}_act" if index < layers - 1 else "features")(x)
    outputs = _conv(1, "patch_logits", 3, seed=seed)(x)
    return keras.Model(inputs, outputs, name="patchgan")


def load_image_generator(path):
    """An image-to-image generator saved with `models.save_network`, as an `ImageGenerator`
    (safe loading: see `tfgan_opt.models.load_generator`)."""
    network = load_keras_model(path, "generator", custom_objects=_custom_objects())
    return ImageGenerator(network, name="generator")


def build_sr_generator(scale=4, width=32, blocks=4, seed=None):
    """`ImageGenerator` around `build_sr_generator_network`."""
    return ImageGenerator(build_sr_generator_network(scale, width, blocks, seed=seed),
                          name="generator")


def build_unet_generator(width=16, depth=3, seed=None):
    """`ImageGenerator` around `build_unet_generator_network`."""
    return ImageGenerator(build_unet_generator_network(width, depth, seed=seed), name="generator")


def build_patchgan(width=32, layers=3, seed=None):
    """`Discriminator` around `build_patchgan_discriminator_network`; ``features`` is the last
    hidden map."""
    return Discriminator(build_patchgan_discriminator_network(width, layers, seed=seed),
                         name="discriminator")
