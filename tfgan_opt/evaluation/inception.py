"""InceptionV3 pool features for standard FID/KID, from a local weights file (no download)."""

import os

import h5py
import numpy as np
import tensorflow as tf

from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import DataError, ModelFileError
from tfgan_opt.core.naming import first_line
from tfgan_opt.evaluation.features import check_images, run_batched

_INCEPTION_SIZE = 299


class InceptionFeatureExtractor:
    """InceptionV3 pool features (2048-d) for standard FID/KID, from a local weights file.

    Images are resized to 299x299 (bilinear) and grayscale is repeated to RGB; [-1, 1] is already
    the input range Keras' InceptionV3 expects. There are no logits (``include_top=False``), so the
    classifier score and mode coverage are not computed with it. On CPU expect roughly 0.1 s per
    image.

    Attributes:
      weights_path: the loaded weights file (Keras HDF5 format).
      embedding_dim: 2048.
      num_classes: None (no logits).
    """

    def __init__(self, weights_path):
        """Builds InceptionV3 and loads ``weights_path``.

        Args:
          weights_path: a Keras HDF5 weights file of ``InceptionV3(include_top=False)``, e.g.
            ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``.

        Raises:
          ModelFileError: the file is missing or does not hold matching weights.
        """
        if not os.path.isfile(weights_path):
            raise ModelFileError(f"InceptionV3 weights file not found: {weights_path}")
        # Checked before the slow model build, so a wrong path fails in milliseconds.
        if not h5py.is_hdf5(weights_path):
            raise ModelFileError(f"{weights_path} is not an HDF5 weights file (save one with "
                                 "model.save_weights('name.h5'))")
        model = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg",
            input_shape=(_INCEPTION_SIZE, _INCEPTION_SIZE, 3))
        try:
            model.load_weights(weights_path)
        except (OSError, ValueError, ImportError) as error:
            raise ModelFileError(f"{weights_path} is not an InceptionV3 (include_top=False) "
                                 f"weights file: {first_line(error)}") from error
        self.weights_path = weights_path
        self.embedding_dim = int(model.output_shape[-1])
        self.num_classes = None
        self._model = model
        self._features = tf.function(
            self._forward, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])

    def _forward(self, images):
        resized = tf.image.resize(images, (_INCEPTION_SIZE, _INCEPTION_SIZE))
        return (self._model(resized, training=False),)

    def activations_and_logits(self, images, batch_size=50):
        """Returns (float64 [N, 2048] pool activations, None) for float [N, H, W, 1 or 3] images."""
        images = check_images(images)
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        elif images.shape[-1] != 3:
            raise DataError(f"images must have 1 or 3 channels, got shape {images.shape}")
        (activations,) = run_batched(self._features, images, batch_size)
        return activations, None
