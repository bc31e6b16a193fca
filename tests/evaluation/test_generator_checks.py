"""What evaluate.py checks before it touches --out_dir: trusted file kinds, shapes, finite output."""

import numpy as np
import pytest

from tfgan_opt import models, testing
from tfgan_opt.core.config import ExportConfig
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.evaluation import generators
from tfgan_opt.export import tflite


class _Constant:
    latent_dim = 4

    def __init__(self, value, shape=(8, 8, 1)):
        self.value, self.image_shape = value, shape

    def __call__(self, z):
        return np.full((len(z),) + self.image_shape, self.value, np.float32)


def test_generator_that_outputs_nan_is_an_error_not_a_score():
    with pytest.raises(ModelFileError, match=r"g\.keras outputs NaN or Inf \(256 of 256 values\)"):
        generators.check_generator_function("g.keras", _Constant(np.nan), (8, 8, 1))
    images = np.zeros((3, 2, 2, 1), np.float32)
    images[1, 0, 0, 0] = np.inf
    with pytest.raises(ModelFileError, match=r"\(1 of 12 values\)"):
        generators.check_finite_images("g", images)


def test_generator_with_another_image_shape_is_refused_naming_both_shapes():
    with pytest.raises(ModelFileError, match=r"shape \(16, 16, 1\), but the data has \(8, 8, 1\)"):
        generators.check_generator_function("g", _Constant(0.0, (16, 16, 1)), (8, 8, 1))


def test_a_good_generator_passes_the_probe():
    generators.check_generator_function("g", _Constant(0.5), (8, 8, 1))


def test_saved_model_is_refused_unless_trusted(tmp_path):
    generator, _, _ = testing.tiny_gan()
    path = tflite.export_saved_model(generator, str(tmp_path / "sm"), ExportConfig())
    with pytest.raises(ModelFileError, match=r"is a SavedModel.*--trust_saved_model"):
        generators.load_generator_function(path)
    function = generators.load_generator_function(path, trust_saved_model=True)
    assert function(np.asarray(generator.sample_latents(2))).shape == (2, 8, 8, 1)


class _Conditional(_Constant):
    """A generator function that takes (z, labels), like a conditional .tflite file."""
    conditional = True

    def __init__(self):
        super().__init__(0.5)
        self.labels_seen = []

    def __call__(self, inputs):
        z, labels = inputs
        self.labels_seen.extend(np.asarray(labels).tolist())
        return super().__call__(z)


def test_a_conditional_generator_is_probed_and_scored_on_every_class():
    function = _Conditional()
    generators.check_generator_function("g.tflite", function, (8, 8, 1), num_classes=6)
    assert sorted(set(function.labels_seen)) == list(range(6))
    assert generators.generate(function, 12, num_classes=3).shape == (12, 8, 8, 1)
    assert function.labels_seen[-12:] == [0, 1, 2] * 4
    with pytest.raises(ModelFileError, match=r"g\.tflite takes a class label, but the data has "
                                             r"no labels"):
        generators.check_generator_function("g.tflite", function, (8, 8, 1))
    # A Keras generator knows its own classes.
    keras_function = generators.KerasGeneratorFunction(
        models.build_generator(testing.tiny_conditional_config(), seed=0))
    generators.check_generator_function("g.keras", keras_function, keras_function.image_shape)
