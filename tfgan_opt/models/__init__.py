"""Generator and discriminator families, one registry entry per architecture."""

import os

from tfgan_opt.core.artifacts import atomic_file
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.naming import first_line

from tfgan_opt.models.base import (Discriminator, Generator, _custom_objects, count_params,
                                   kernel_weights)
from tfgan_opt.models.dcgan import (build_dcgan_discriminator_network,
                                    build_dcgan_generator_network)
from tfgan_opt.models.mlp import build_mlp_discriminator_network, build_mlp_generator_network

# arch -> (generator network builder, discriminator network builder); each takes (config, seed),
# generator builders also ``sync_batch_norm``.
ARCHITECTURES = {
    "dcgan": (build_dcgan_generator_network, build_dcgan_discriminator_network),
    "mlp": (build_mlp_generator_network, build_mlp_discriminator_network),
}


def build_generator(config, seed=None, sync_batch_norm=False):
    """Builds a `Generator` for a `ModelConfig`; ``seed`` makes its initial weights reproducible.

    ``sync_batch_norm`` computes batch-norm statistics over the global batch of all replicas when
    trained under a ``tf.distribute`` strategy, so N replicas train like one device. It is not
    saved with the network (tf_keras leaves it out of the layer config): a loaded generator has
    ordinary batch norm, which infers identically.
    """
    return Generator(ARCHITECTURES[config.arch][0](config, seed, sync_batch_norm=sync_batch_norm),
                     name="generator")


def build_discriminator(config, seed=None):
    """Builds a `Discriminator` for a `ModelConfig`."""
    return Discriminator(ARCHITECTURES[config.arch][1](config, None if seed is None else seed + 1000),
                         name="discriminator")


def save_network(model, path):
    """Saves a `Generator`'s or `Discriminator`'s network (architecture + weights) as ``.keras``.

    The file is written atomically; `load_generator` / `load_discriminator` restore the model.
    """
    # Written next to ``path`` rather than in the system temp folder: a kill leaves a ``.tmp-``
    # leftover that the run directory's sweep removes, and a full disk is the run's disk.
    with atomic_file(path) as tmp_path:
        model.network.save(tmp_path)


def _load_network(path, kind):
    if not os.path.exists(path):
        raise ModelFileError(f"{kind} file {path} does not exist")
    try:
        return keras.models.load_model(path, custom_objects=_custom_objects(), compile=False)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not such a file"
        raise ModelFileError(
            f"{path} is not a saved tfgan_opt {kind} ({first_line(error)})") from error


def load_generator(path):
    """Loads a `Generator` saved by `save_network`.

    Raises:
      ModelFileError: ``path`` is missing or is not a saved network.
    """
    return Generator(_load_network(path, "generator"), name="generator")


def load_discriminator(path):
    """Loads a `Discriminator` saved by `save_network`."""
    return Discriminator(_load_network(path, "discriminator"), name="discriminator")
