"""Conditional TFLite files (issue 15): inputs ``z`` and ``label``, one signature, every class."""

import numpy as np
import pytest

from tfgan_opt import ChannelPruneConfig, ExportConfig, models
from tfgan_opt.compress import channels, quantize
from tfgan_opt.export import benchmark, tflite
from tfgan_opt.export.litert import load_tflite_generator, read_tflite
from tfgan_opt.testing import tiny_conditional_config


@pytest.fixture(scope="module")
def qat_generator():
    generator = models.build_generator(tiny_conditional_config(width=8, num_classes=4), seed=0)
    graph = channels.channel_graph(generator)
    assert graph.blocked == {}  # the class embedding has a rule; it does not block pruning
    narrow = channels.channel_prune(generator, macs_target=0.6)
    assert channels.count_macs(narrow)["macs"] < channels.count_macs(generator)["macs"]
    return quantize.apply_qat(narrow)


@pytest.fixture(scope="module")
def int8_file(qat_generator, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "int8.tflite")
    return tflite.export_tflite(qat_generator, path, ExportConfig(), "int8")


def test_int8_file_has_z_and_label_inputs_under_one_signature(int8_file):
    signature = tflite.describe_signature(read_tflite(int8_file))
    assert signature["key"] == "serving_default"
    assert signature["inputs"]["z"]["shape"] == [1, 8] and signature["inputs"]["z"]["dtype"] == "int8"
    assert signature["inputs"]["label"] == {"shape": [1], "dtype": "int32", "quantization": None}
    assert list(signature["outputs"]) == ["image"]


def test_verification_checks_every_class(int8_file, qat_generator):
    report = tflite.verify_tflite(int8_file, qat_generator, ExportConfig(verify_samples=2))
    assert report["classes_checked"] == 4  # more classes than verify_samples: all covered
    assert report["class_psnr_db"] > 30 and report["psnr_db"] >= report["class_psnr_db"]
    assert report["signatures"]["serving_default"]["inputs"] == ["label", "z"]
    assert report["input_dtype"] == "int8"
    # The class row leaves GATHER at the QAT table's int8 scale: no DEQUANTIZE -> QUANTIZE.
    assert report["float_ops"] == [] and report["ops"][:2] == ["GATHER", "MUL"]


def test_tflite_generator_follows_the_label_like_keras(int8_file, qat_generator):
    function = load_tflite_generator(int8_file)
    assert function.conditional
    z, _ = qat_generator.sample_latents(4)
    for label in (0, 3):
        labels = np.full(4, label, np.int32)
        np.testing.assert_allclose(function((z, labels)), qat_generator((z, labels)).numpy(),
                                   rtol=0, atol=0.1)
    with pytest.raises(ValueError, match="call it with"):
        function(z)
    assert benchmark.tflite_runner(int8_file)() is None  # label input filled with class 0


def test_float_saved_model_takes_both_inputs(qat_generator, tmp_path):
    path = tflite.export_saved_model(qat_generator, str(tmp_path / "sm"), ExportConfig())
    report = tflite.verify_saved_model(path, qat_generator, ExportConfig())
    assert report["shape_ok"] and report["psnr_db"] > 40


def test_readme_android_snippet_feeds_the_label_input_by_its_name(int8_file):
    import os
    import re
    from tfgan_opt.testing import REPO
    readme = open(os.path.join(REPO, "README.md")).read()
    snippet = re.search(r"```kotlin\n(.*?)```", readme, re.S).group(1)
    assert 'getInputTensorFromSignature("label", "serving_default")' in snippet
    assert 'inputs["label"] = intArrayOf(label)' in snippet  # int32, as the file has it
    signature = tflite.describe_signature(read_tflite(int8_file))
    assert signature["inputs"]["label"]["dtype"] == "int32"
