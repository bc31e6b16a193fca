"""Loading Keras model files without running code that a file carries.

tf_keras's ``safe_mode=True`` only guards the zip ``.keras`` format: an HDF5 file, whatever its
name, goes to the legacy loader, which runs a ``Lambda`` layer's marshalled bytecode, and a
``TFOpLambda`` layer may name any TensorFlow op (``io.write_file`` included). So a file is
accepted only if its bytes are a zip ``.keras`` archive whose ``config.json`` names no such layer
and no class this process does not know; that is checked by reading the JSON, before Keras
deserializes anything, and the load itself still runs with ``safe_mode=True``.
"""

import json
import os
import zipfile

from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ModelFileError

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF"
# Layers whose file entry holds Python code or names an arbitrary TensorFlow function.
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})
# Where a class named in a file may come from, besides the caller's custom objects (optimizers,
# losses and metrics appear in a compiled model's compile_config; loading never compiles).
_NAMESPACES = (keras.layers, keras.initializers, keras.regularizers, keras.constraints,
               keras.activations, keras.models, keras.mixed_precision, keras.optimizers,
               keras.losses, keras.metrics)
_KERAS_BUILTINS = frozenset({"Functional", "Sequential", "Model", "Policy", "__tuple__"})


def _classes(tree):
    """Every ``class_name`` in a Keras config tree, with the registered name when it has one."""
    if isinstance(tree, dict):
        if isinstance(tree.get("class_name"), str):
            yield tree["class_name"], tree.get("registered_name")
        for value in tree.values():
            yield from _classes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _classes(value)


def _known(class_name, registered_name, custom_objects):
    if class_name in _KERAS_BUILTINS or class_name in custom_objects:
        return True
    if registered_name and (registered_name in custom_objects
                            or keras.saving.get_registered_object(registered_name) is not None):
        return True
    return any(isinstance(getattr(namespace, class_name, None), type) for namespace in _NAMESPACES)


def _read_archive_config(path, kind):
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(_HDF5_MAGIC):
        raise ModelFileError(f"{kind} file {path} is an HDF5 (legacy .h5) Keras file, which can run "
                             "code when loaded; tfgan_opt loads only zip .keras files (re-save a "
                             "trusted model with model.save('model.keras'))")
    if head != _ZIP_MAGIC:
        raise ModelFileError(f"{kind} file {path} is not a .keras file (it does not start like a "
                             "zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as error:
        raise ModelFileError(f"{kind} file {path} is a damaged .keras archive "
                             f"({type(error).__name__}: {str(error)[:120]})") from error
    if not isinstance(config, dict):
        raise ModelFileError(f"{kind} file {path} holds no model configuration")
    return config


def check_keras_file(path, kind, custom_objects=None):
    """Raises `ModelFileError` unless ``path`` is a zip ``.keras`` file with only known, code-free
    layers. Reads only the archive's ``config.json``; nothing is deserialized.

    Args:
      path: the file to check.
      kind: what the file should be ("generator", "discriminator", ...), named in errors.
      custom_objects: classes the caller registers for loading (they count as known).
    """
    if not os.path.exists(path):
        raise ModelFileError(f"{kind} file {path} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"{kind} file {path} is a directory, not a .keras file")
    custom_objects = custom_objects or {}
    for class_name, registered_name in _classes(_read_archive_config(path, kind)):
        if class_name in CODE_LAYERS:
            raise ModelFileError(f"{kind} file {path} contains a {class_name} layer, which carries "
                                 "code; refusing to load it")
        if not _known(class_name, registered_name, custom_objects):
            raise ModelFileError(f"{kind} file {path} contains an unknown class {class_name!r}; "
                                 "refusing to load it")


def load_keras_model(path, kind, custom_objects=None):
    """Loads a ``.keras`` file checked by `check_keras_file`, uncompiled, in ``safe_mode``.

    Raises:
      ModelFileError: the file is missing, not a zip ``.keras`` file, names a code-carrying or an
        unknown layer, or does not deserialize.
    """
    check_keras_file(path, kind, custom_objects)
    try:
        return keras.models.load_model(path, custom_objects=custom_objects, compile=False,
                                       safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not such a file"
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise ModelFileError(f"{path} is not a loadable {kind} ({first})") from error
