"""Layers tfgan_opt adds to tf_keras. Each is registered for (de)serialization under ``tfgan_opt``."""

import tensorflow as tf

from tfgan_opt.core.compat import keras


@keras.utils.register_keras_serializable(package="tfgan_opt")
class SpectralNormalization(keras.layers.SpectralNormalization):
    """tf_keras's spectral normalization wrapper (Miyato et al. 2018) with a working ``build``.

    tf_keras 2.21's ``build`` creates its InputSpec through ``tf.keras``, which is Keras 3 unless
    ``TF_USE_LEGACY_KERAS=1`` was set before TensorFlow was imported, and then fails with "Layer
    input_spec must be an instance of InputSpec". This copy of ``build`` uses tf_keras's InputSpec;
    the normalization itself is inherited unchanged.
    """

    def build(self, input_shape):
        keras.layers.Wrapper.build(self, input_shape)
        input_shape = tf.TensorShape(input_shape)
        self.input_spec = keras.layers.InputSpec(shape=[None] + input_shape[1:])
        self.kernel = self.layer.kernel
        self.kernel_shape = self.kernel.shape.as_list()
        self.vector_u = self.add_weight(
            shape=(1, self.kernel_shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            trainable=False, name="vector_u", dtype=self.kernel.dtype)
