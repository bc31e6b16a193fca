"""The one place that decides which Keras tfgan_opt uses, and the one place that imports tfmot.

tensorflow-model-optimization only works with Keras 2 objects, which since TensorFlow 2.16 live in the
separate ``tf_keras`` package (``import keras`` gives Keras 3). Every module imports ``keras`` from
here, so no Keras 3 object can ever be mixed into a model that tfmot will wrap.

tfmot 0.8.1 sets ``os.environ["TF_USE_LEGACY_KERAS"] = "1"`` when it is imported and then reads
``tf.keras``, which makes ``tf.keras`` resolve to tf_keras for the whole process. `import_tfmot`
imports it with the variable and ``tf.keras`` left as the caller had them: ``tf.keras`` is
resolved first under the caller's setting (tfmot then sees Keras 3 and takes ``tf_keras`` itself,
which is what tfgan_opt uses anyway), and the variable is restored afterwards. tfmot's own code
uses only its ``compat.keras`` (tf_keras), never ``tf.keras``, so this changes nothing for tfmot.
"""

import os

import tf_keras as keras

__all__ = ["keras", "import_tfmot", "tfmot_private"]

_LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


def import_tfmot():
    """Imports and returns ``tensorflow_model_optimization``, leaving ``TF_USE_LEGACY_KERAS`` and
    ``tf.keras`` as they were before the call (see the module docstring)."""
    import sys
    if "tensorflow_model_optimization" in sys.modules:
        return sys.modules["tensorflow_model_optimization"]
    import tensorflow as tf

    saved = os.environ.get(_LEGACY_KERAS)
    getattr(tf.keras, "__name__", None)  # resolves tf.keras now, under the caller's setting
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if saved is None:
            os.environ.pop(_LEGACY_KERAS, None)
        else:
            os.environ[_LEGACY_KERAS] = saved
    return tfmot


def tfmot_private(module):
    """A module of tfmot that its public API does not export (tfmot 0.8.1 is pinned), e.g.
    ``"sparsity.keras.pruning_wrapper"``; imported through `import_tfmot`."""
    import importlib
    import_tfmot()
    return importlib.import_module("tensorflow_model_optimization.python.core." + module)
