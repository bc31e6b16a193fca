"""Generator and discriminator families, one registry entry per architecture."""

from tfgan_opt.core.artifacts import atomic_file
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.keras_files import load_keras_model

from tfgan_opt.models.base import (Discriminator, Generator, _custom_objects, count_params,
                                   kernel_weights)
from tfgan_opt.models.dcgan import (build_dcgan_discriminator_network,
                                    build_dcgan_generator_network)
from tfgan_opt.models.mlp import build_mlp_discriminator_network, build_mlp_generator_network
from tfgan_opt.models import sr  # noqa: F401  (registers tfgan_opt>DepthToSpace for loading)
from tfgan_opt.models.surgery import as_functional

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


def custom_objects():
    """The classes a saved tfgan_opt network may contain (for `keras_files.check_keras_file`)."""
    return _custom_objects()


def _load_network(path, kind):
    # Only zip .keras files whose config names known, code-free layers (see core.keras_files).
    return load_keras_model(path, kind, custom_objects=_custom_objects())


def load_generator(path):
    """Loads a `Generator` saved by `save_network`.

    Raises:
      ModelFileError: ``path`` is missing, is not a zip ``.keras`` file (HDF5 is refused: it can
        run code when loaded), holds a code-carrying or unknown layer, or does not load.
    """
    return Generator(_load_network(path, "generator"), name="generator")


def load_discriminator(path):
    """Loads a `Discriminator` saved by `save_network`."""
    return Discriminator(_load_network(path, "discriminator"), name="discriminator")


def load_user_model(path, kind="generator"):
    """Loads a user's own Keras model file: the one place a model from outside tfgan_opt is read.

    Goes through `core.keras_files.load_keras_model`: zip ``.keras`` files only, checked for
    code-carrying layers, loaded with ``safe_mode=True`` (HDF5 files and SavedModels are refused:
    they can run code when loaded).

    Args:
      path: a ``.keras`` file holding a tf_keras Sequential or Functional model.
      kind: ``generator`` or ``discriminator``, for messages.

    Returns:
      The model as a Functional keras.Model (a Sequential one is rebuilt as Functional, same
      layer names and weights).

    Raises:
      ModelFileError: the file is missing, not a ``.keras`` zip, or not a loadable model.
    """
    model = load_keras_model(path, kind, custom_objects=_custom_objects())
    return wrap_user_model(model, kind, path)


def wrap_user_model(model, kind="generator", source="the model"):
    """A user's Sequential/Functional keras.Model as a Functional copy, checked for one input
    and one output.

    Raises:
      ModelFileError: a subclassed model, or several inputs or outputs.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise ModelFileError(f"{kind} {source} must be a Sequential or Functional tf_keras model "
                             f"(got {type(model).__name__}); subclassed models have no graph "
                             f"to prune")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{kind} {source} must have one input and one output, not "
                             f"{len(model.inputs)} and {len(model.outputs)}")
    return as_functional(model)
