"""Generator and discriminator families, one registry entry per architecture."""

from tfgan_opt.models.base import Discriminator, Generator, count_params, kernel_weights
from tfgan_opt.models.dcgan import (build_dcgan_discriminator_network,
                                    build_dcgan_generator_network)
from tfgan_opt.models.mlp import build_mlp_discriminator_network, build_mlp_generator_network

# arch -> (generator network builder, discriminator network builder); each takes (config, seed).
ARCHITECTURES = {
    "dcgan": (build_dcgan_generator_network, build_dcgan_discriminator_network),
    "mlp": (build_mlp_generator_network, build_mlp_discriminator_network),
}


def build_generator(config, seed=None):
    """Builds a `Generator` for a `ModelConfig`; ``seed`` makes its initial weights reproducible."""
    return Generator(ARCHITECTURES[config.arch][0](config, seed), name="generator")


def build_discriminator(config, seed=None):
    """Builds a `Discriminator` for a `ModelConfig`."""
    return Discriminator(ARCHITECTURES[config.arch][1](config, None if seed is None else seed + 1000),
                         name="discriminator")


def save_generator(generator, path):
    """Saves a generator's network (architecture and weights) as a tf_keras ``.keras`` file.

    The file is written atomically; `load_generator` restores an equal `Generator`.
    """
    import os
    import tempfile

    from tfgan_opt.artifacts import atomic_write_bytes
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = os.path.join(tmp, "generator.keras")
        generator.network.save(tmp_file)
        with open(tmp_file, "rb") as f:
            atomic_write_bytes(path, f.read())


def load_generator(path):
    """Loads a `Generator` saved by `save_generator`.

    Raises:
      ModelFileError: ``path`` is missing or is not a saved generator.
    """
    import os

    from tfgan_opt.errors import ModelFileError
    from tfgan_opt.models.base import _custom_objects
    if not os.path.exists(path):
        raise ModelFileError(f"generator file {path} does not exist")
    try:
        network = keras.models.load_model(path, custom_objects=_custom_objects(), compile=False)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not a generator file"
        raise ModelFileError(f"{path} is not a saved tfgan_opt generator ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from error
    return Generator(network, name="generator")


from tfgan_opt.compat import keras  # noqa: E402  (kept last: only the loaders above use it)
