"""Tests of tfgan_opt.export.image_tflite: the named signature, shapes, dtypes, model card and
verification against Keras, on a tiny SR generator."""

import numpy as np
import pytest

from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.export import image_tflite
from tfgan_opt.export.metadata import read_model_card
from tfgan_opt.models import sr


@pytest.fixture(scope="module")
def tiny_sr():
    return sr.build_sr_generator(4, width=4, blocks=1, seed=0)


def _tiles(n=4, side=8):
    return np.random.default_rng(0).uniform(-1, 1, (n, side, side, 3)).astype(np.float32)


@pytest.mark.parametrize("fmt, dtype", [("float32", "float32"), ("int8", "int8")])
def test_exported_file_maps_input_image_to_four_times_larger_output_image(tiny_sr, tmp_path,
                                                                           fmt, dtype):
    path = image_tflite.export_image_tflite(tiny_sr, str(tmp_path / f"{fmt}.tflite"), fmt, 8,
                                            _tiles(), card={"task": "sr_x4"})
    content = open(path, "rb").read()
    signature = image_tflite.describe_image_signature(content)
    assert signature["key"] == "serving_default"
    assert signature["inputs"]["input_image"]["shape"] == [1, 8, 8, 3]
    assert signature["outputs"]["output_image"]["shape"] == [1, 32, 32, 3]
    assert signature["inputs"]["input_image"]["dtype"] == dtype
    card = read_model_card(content, path)
    assert (card["input_height"], card["input_width"], card["task"]) == (8, 8, "sr_x4")
    report = image_tflite.verify_image_tflite(path, tiny_sr, _tiles(2))
    assert report["shape_ok"] and report["delegate"] == "XNNPACK"
    assert report["psnr_db"] > (60 if fmt == "float32" else 25)


def test_a_file_without_the_signature_is_refused(tmp_path):
    from tfgan_opt.export.tflite import export_tflite
    from tfgan_opt.testing import tiny_gan
    from tfgan_opt import ExportConfig
    generator, _, _ = tiny_gan()
    path = export_tflite(generator, str(tmp_path / "z.tflite"), ExportConfig(), "float32")
    with pytest.raises(ModelFileError, match="input_image"):
        image_tflite.tflite_image_function(path)
