"""Shared fixtures: tiny configurations and data so the whole suite stays fast on 2 CPU cores."""

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.path.join(REPO, "..", "shared", "data", "mnist-t10k")
sys.path.insert(0, os.path.join(REPO, "experiments"))


@pytest.fixture
def tiny_model_config():
    from tfgan_opt import ModelConfig
    return ModelConfig(arch="dcgan", image_size=8, channels=1, latent_dim=4, width=4,
                       discriminator_width=4)


def tiny_dataset(num=32, size=8, channels=1, batch=8, seed=0):
    """A repeated tf.data pipeline of random images in [-1, 1] with labels, like `make_dataset`."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (num, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, 3, num).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(
        batch, drop_remainder=True)
