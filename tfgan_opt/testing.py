"""Tiny models and fake data shared by tests (and handy for quick experiments).

Everything here is small enough to build and train for a few steps in well under a second on a
laptop CPU; nothing runs at import time.
"""

import os

import numpy as np
import tensorflow as tf

from tfgan_opt.compress import prune
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import LossConfig, ModelConfig, PruneConfig, TrainConfig
from tfgan_opt.models import build_discriminator, build_generator


# The checkout this package was imported from (tests run the experiment scripts in it), and the
# real MNIST test digits beside it, when the shared data folder is there.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.path.join(REPO, "..", "shared", "data", "mnist-t10k")


def tiny_dataset(num=32, size=8, channels=1, batch=8, seed=0):
    """A repeated tf.data pipeline of uniform random images in [-1, 1] with labels 0..2."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (num, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, 3, num).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(
        batch, drop_remainder=True)


def apply_masks_once(model):
    """One training-mode call under the pruning callbacks: computes and applies the masks of a
    pruning-wrapped `Generator`/`Discriminator`."""
    callbacks = prune.pruning_callbacks(model)
    for callback in callbacks:
        callback.on_train_begin()
        callback.on_train_batch_begin(0)
    inputs = (model.sample_latents(4) if hasattr(model, "sample_latents")
              else np.zeros((4,) + tuple(model.network.input_shape[1:]), np.float32))
    model(inputs, training=True)
    for callback in callbacks:
        callback.on_epoch_end(0)


def tiny_model_config(arch="dcgan", image_size=8, width=4, latent_dim=8, channels=1,
                      upsample="transpose"):
    """A `ModelConfig` for a network with a few thousand weights."""
    return ModelConfig(arch=arch, image_size=image_size, channels=channels, latent_dim=latent_dim,
                       width=width, discriminator_width=width, upsample=upsample)


def tiny_conditional_config(arch="dcgan", num_classes=3, acgan_weight=0.0, class_vectors="learned",
                            **overrides):
    """A conditional `tiny_model_config` (`tiny_dataset`'s labels are 0..2)."""
    return tiny_model_config(arch, **overrides).replace(
        conditional=True, num_classes=num_classes, acgan_weight=acgan_weight,
        class_vectors=class_vectors)


def tiny_gan(arch="dcgan", seed=0, **config_overrides):
    """Returns (generator, discriminator, model_config) for `tiny_model_config`."""
    config = tiny_model_config(arch, **config_overrides)
    return build_generator(config, seed=seed), build_discriminator(config, seed=seed), config


def fake_image_dataset(model_config, batch_size=8, num_images=32, seed=0):
    """A repeated ``tf.data.Dataset`` of (images, labels) batches like the real pipeline's.

    Images are smooth random blobs in [-1, 1], float32 [batch_size, H, W, C]; labels int64 [B].
    """
    rng = np.random.default_rng(seed)
    size, channels = model_config.image_size, model_config.channels
    low_res = rng.uniform(-1, 1, (num_images, 2, 2, channels)).astype(np.float32)
    images = tf.image.resize(low_res, (size, size), method="bilinear").numpy()
    labels = np.zeros(num_images, np.int64)
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .repeat().batch(batch_size, drop_remainder=True))


def tiny_train_config(steps=4, **overrides):
    """A `TrainConfig` that trains ``steps`` steps and logs each one, with no checkpoints."""
    values = dict(steps=steps, log_every=1, checkpoint_every=steps, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def tiny_loss_config(**overrides):
    """The default (non-saturating) `LossConfig`."""
    return LossConfig(**overrides)


def randomize_batch_norm(network, seed=0):
    """Gives every BatchNormalization layer non-trivial gamma, beta and moving statistics.

    Freshly built BN layers are the identity in inference mode, which would hide folding errors.
    """
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               if "gamma" in w.name or "variance" in w.name
                               else rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for w in layer.weights])


def layer_sparsity(model):
    """{layer name: fraction of zero kernel weights} of a model's network."""
    return {row["layer"]: row["sparsity"] for row in prune.sparsity_report(model)["layers"]}


def assert_pruned_to(model, pruned_names, target, dense_names=()):
    """Asserts the named layers hold ``target`` sparsity (+-0.02) and ``dense_names`` none."""
    sparsity = layer_sparsity(model)
    np.testing.assert_allclose([sparsity[n] for n in pruned_names], target, atol=0.02)
    np.testing.assert_allclose([sparsity[n] for n in dense_names], 0.0, atol=1e-6)


def pruned_tiny_gan(arch, sparsity=0.5, upsample="transpose"):
    """(stripped generator with exactly ``sparsity`` zeros in its pruned layers and non-trivial
    BN, the dense generator, discriminator, model_config)."""
    generator, discriminator, model_config = tiny_gan(arch, upsample=upsample)
    randomize_batch_norm(generator.network)
    pruned = prune.apply_pruning(generator, PruneConfig(target_sparsity=sparsity,
                                                        schedule="constant", frequency=1), 1)
    apply_masks_once(pruned)
    return prune.strip_pruning(pruned), generator, discriminator, model_config


def zero_patterns(model):
    """{layer name: boolean array, True where the effective kernel is exactly zero}."""
    layers = [layer for layer in model.network.layers if prune.effective_kernel(layer) is not None]
    return {row["layer"]: prune.effective_kernel(layer) == 0
            for layer, row in zip(layers, prune.sparsity_report(model)["layers"])}


def write_image_folder(directory, num=24, size=8, channels=3, seed=0):
    """Writes ``num`` random PNGs (two kinds: a bright or a dark centre square) flat into
    ``directory``: an unlabelled ``folder:`` source. Returns ``directory``."""
    from PIL import Image  # only this helper needs Pillow
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for index in range(num):
        pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
        pixels[size // 4:3 * size // 4, size // 4:3 * size // 4] = 255 * (index % 2)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(
            os.path.join(directory, f"image_{index:03d}.png"))
    return directory

def malicious_keras_file(path, marker, save_format="h5", input_dim=4):
    """Writes a model file whose ``Lambda`` layer creates ``marker`` when the model is rebuilt.

    The payload is the kind of file issue 11 reproduced: tf_keras's legacy HDF5 loader runs the
    marshalled bytecode of the lambda while loading. Building the model here runs the lambda once
    too, so ``marker`` is removed before returning: if it exists later, a load ran the code.

    Args:
      path: where to write (any name: ``evil.h5``, or an HDF5 file named ``generator.keras``).
      marker: the file the payload creates.
      save_format: ``"h5"`` (legacy HDF5) or ``"keras"`` (zip).
      input_dim: the model's input size (a generator's latent size, say).
    """
    # The path is a literal inside the code object, so the payload carries no closure.
    payload = eval(  # noqa: S307 - test payload, built from a repr()'d path
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inputs = keras.Input((input_dim,))
    outputs = keras.layers.Lambda(payload, name="payload")(inputs)
    model = keras.Model(inputs, outputs)
    tmp_path = path + (".h5" if save_format == "h5" else ".keras")
    model.save(tmp_path, save_format=save_format)
    os.replace(tmp_path, path)
    if os.path.exists(marker):
        os.remove(marker)
    return path
