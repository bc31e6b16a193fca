"""Shared fixtures; shared helpers live in `tfgan_opt.testing` (one home, importable anywhere)."""

import os
import sys

import pytest

from tfgan_opt.testing import REPO

# The CLI tests import the experiment scripts' helper modules (_cli, _flags).
sys.path.insert(0, os.path.join(REPO, "experiments"))


@pytest.fixture
def tiny_model_config():
    from tfgan_opt import ModelConfig
    return ModelConfig(arch="dcgan", image_size=8, channels=1, latent_dim=4, width=4,
                       discriminator_width=4)
