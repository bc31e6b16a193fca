"""The one place that decides which Keras tfgan_opt uses.

tensorflow-model-optimization only works with Keras 2 objects, which since TensorFlow 2.16 live in the
separate ``tf_keras`` package (``import keras`` gives Keras 3). Every module imports ``keras`` from
here, so no Keras 3 object can ever be mixed into a model that tfmot will wrap.
"""

import tf_keras as keras

__all__ = ["keras"]
