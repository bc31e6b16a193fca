"""Tests of the ship/ folder: only deployable files, each with its signature and a measured card;
the README's Android snippet names only what the shipped file has; LiteRT's benchmark tool runs it
by signature."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tfgan_opt import DataConfig, ExportConfig, ModelConfig, PipelineConfig
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.export import tflite
from tfgan_opt.export.litert import read_tflite, run_signature
from tfgan_opt.export.metadata import embed_model_card, read_model_card
from tfgan_opt.models import build_generator
from tfgan_opt.pipeline import ship, variants
from tfgan_opt.testing import REPO

MODEL = ModelConfig(image_size=8, latent_dim=4, width=4, discriminator_width=4)
CONFIG = PipelineConfig(data=DataConfig(source="digits", image_size=8), model=MODEL,
                        export=ExportConfig(representative_samples=16, verify_samples=8))
SIGNATURES = {"serving_default": {"inputs": ["z"], "outputs": ["image"]}}


def _record(name, fmt, path):
    return {"name": name, "model": "qat", "format": fmt, "file": path, "sparsity": 0.5,
            "macs": 1234, "psnr_db": 41.5, "bytes": 9000, "gzip_bytes": 4000,
            "latency_ms": {"b1_t1": 0.05},
            "metrics": {"frechet_distance": 2.5, "classes_covered": 9, "num_fake": 40,
                        "class_histogram": [1, 2]}}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A run's evaluate record for a tiny generator, and the ship/ folder made from it."""
    run_dir = tmp_path_factory.mktemp("run")
    generator = build_generator(MODEL, seed=0)
    records = [_record(variants.DENSE_KERAS, "keras", None)]
    for name, fmt in ((variants.DEPLOYED, "int8"), ("pruned float32", "float32")):
        path = str(run_dir / f"{fmt}.tflite")
        tflite.export_tflite(generator, path, CONFIG.export, fmt,
                             card=ship.model_card(CONFIG, _record(name, fmt, path), "digits test"))
        records.append(_record(name, fmt, path))
    evaluated = {"variants": records, "floor": {"frechet_distance": 0.3}, "data": "digits test",
                 "classifier_accuracy": 0.97, "num_real": 100}
    ship_dir = str(run_dir / "ship")
    record = ship.ship_variants(evaluated, {"qat": generator}, CONFIG, ship_dir)
    return evaluated, record, ship_dir


def test_ship_holds_only_the_shipped_files_and_the_cards(shipped):
    _, record, ship_dir = shipped
    # "pruned float32" is exported but not in variants.SHIPPED.
    assert sorted(os.listdir(ship_dir)) == ["model_card.json", "model_card.md",
                                            "pruned_qat_int8.tflite"]
    assert record["deployed"] == os.path.join(ship_dir, "pruned_qat_int8.tflite")
    assert record["checks"]["pruned_qat_int8.tflite"]["delegate"] == "XNNPACK"


def test_shipped_card_carries_the_measured_quality_and_reads_back(shipped):
    evaluated, record, ship_dir = shipped
    card = read_model_card(read_tflite(record["deployed"]))
    assert card == json.load(open(os.path.join(ship_dir, "model_card.json")))["files"][
        "pruned_qat_int8.tflite"]
    assert card["latent_prior"]["text"] == "z ~ N(0, I)" and card["latent_prior"]["dims"] == 4
    assert card["output_range"] == [-1.0, 1.0]
    assert "round((x + 1) * 127.5)" in card["pixel_conversion"]
    assert card["training_data"] == "digits test"
    assert card["compression"] == {"variant": variants.DEPLOYED, "model": "qat", "format": "int8",
                                   "weight_sparsity": 0.5, "macs": 1234}
    quality = card["quality"]
    assert (quality["frechet_distance"], quality["frechet_distance_dense_keras"],
            quality["frechet_distance_real_vs_real"]) == (2.5, 2.5, 0.3)
    assert quality["classes_covered"] == 9 and quality["psnr_db_vs_keras"] == 41.5
    assert card["size"] == {"exported_bytes": 9000, "exported_gzip_bytes": 4000}
    assert "quality_note" not in card
    # The exported file keeps its export-time card: no numbers it could not know.
    exported = read_model_card(read_tflite(evaluated["variants"][1]["file"]))
    assert exported["quality"] is None
    assert {k: v for k, v in card.items() if k not in ("quality", "size", "latency_ms", "file")} \
        == {k: v for k, v in exported.items() if k != "quality_note" and k != "quality"}


def test_shipped_file_runs_by_signature_like_the_exported_one(shipped):
    evaluated, record, _ = shipped
    content = read_tflite(record["deployed"])
    from ai_edge_litert.interpreter import Interpreter
    assert Interpreter(model_content=content).get_signature_list() == SIGNATURES
    z = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    keys = ("serving_default", "z", "image")
    np.testing.assert_array_equal(run_signature(content, z, *keys)[0],
                                  run_signature(read_tflite(evaluated["variants"][1]["file"]), z,
                                                *keys)[0])


def test_model_card_markdown_states_the_signature_and_pixels(shipped):
    text = open(os.path.join(shipped[2], "model_card.md")).read()
    assert "Ship `pruned_qat_int8.tflite`" in text
    assert re.search(r"\| `z` \| \[1, 4\] \| int8 \| int8, scale [0-9.e-]+, zero point -?\d+ \|",
                     text)
    assert "| `image` | [1, 8, 8, 1] | int8 | int8, scale 0.0078125, zero point 0 |" in text
    assert "round((x + 1) * 127.5)" in text and "FD 2.5;" in text and "41.5 dB" in text
    # CONFIG prunes 80% of the weights: recovery 500 + 0 per removed, then 300 QAT steps.
    assert "fine-tuned up to 800 steps more" in text


def test_the_card_counts_every_recovery_as_long_as_it_ran():
    from tfgan_opt import ChannelPruneConfig
    from tfgan_opt.core.recovery_config import RecoveryConfig
    config = CONFIG.replace(channels=ChannelPruneConfig(macs_target=0.5),
                            recovery=RecoveryConfig(steps=100, steps_per_removed=1000))
    card = ship.model_card(config, _record(variants.DEPLOYED, "int8", "x.tflite"), "digits")
    # Channels: 100 + 500 for half the MACs; weights (80%): 100 + 800; QAT: 300.
    assert card["training"]["fine_tune_steps"] == 600 + 900 + config.quantize.steps


def test_a_shipped_file_that_computes_otherwise_is_refused(shipped):
    evaluated, record, _ = shipped
    content = read_tflite(evaluated["variants"][1]["file"])
    other = read_tflite(evaluated["variants"][2]["file"])  # the float32 file: other outputs
    card = read_model_card(content)
    z = np.random.default_rng(4).standard_normal((2, 4)).astype(np.float32)
    with pytest.raises(ModelFileError, match="other images"):
        ship.check_shipped_file(embed_model_card(other, card), content, card, z, "x.tflite")
    with pytest.raises(ModelFileError, match="does not read back"):
        ship.check_shipped_file(content, content, dict(card, name="changed"), z, "x.tflite")


def _without_signatures(content):
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    model.signatureDefs = None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_export_without_named_signature_is_converted_again_when_shipped(shipped, tmp_path):
    # A run exported before issue 12: its QAT files had no signature.
    evaluated, _, _ = shipped
    generator = build_generator(MODEL, seed=0)
    old = tmp_path / "old.tflite"
    old.write_bytes(_without_signatures(tflite.convert_tflite(generator, "int8", CONFIG.export)))
    record = dict(evaluated["variants"][1], file=str(old))
    out = ship.ship_variants(dict(evaluated, variants=[record], data="d"), {"qat": generator},
                             CONFIG, str(tmp_path / "ship"))
    content = read_tflite(out["deployed"])
    tflite.check_signature(content, "shipped")
    assert read_model_card(content)["training_data"] == "d"  # the old file had no card


def test_a_reconversion_that_differs_from_the_measured_file_is_refused(shipped, tmp_path):
    evaluated, _, _ = shipped
    generator = build_generator(MODEL, seed=0)
    old = tmp_path / "old.tflite"  # float32, while the record says int8: another file
    old.write_bytes(_without_signatures(tflite.convert_tflite(generator, "float32",
                                                              CONFIG.export)))
    record = dict(evaluated["variants"][1], file=str(old))
    with pytest.raises(ModelFileError, match="rerun the export stage"):
        ship.ship_variants(dict(evaluated, variants=[record]), {"qat": generator}, CONFIG,
                           str(tmp_path / "ship"))
    assert not os.path.exists(tmp_path / "ship")  # nothing half-written


def _android_snippet():
    readme = open(os.path.join(REPO, "README.md")).read()
    blocks = re.findall(r"```kotlin\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "README.md should hold one Kotlin block"
    return blocks[0]


def test_readme_android_snippet_uses_only_names_the_shipped_file_has(shipped):
    snippet = _android_snippet()
    inputs = re.findall(r'getInputTensorFromSignature\("(\w+)", "(\w+)"\)', snippet)
    outputs = re.findall(r'getOutputTensorFromSignature\("(\w+)", "(\w+)"\)', snippet)
    runs = re.findall(r'runSignature\(inputs, mapOf\("(\w+)" to \w+\), "(\w+)"\)', snippet)
    fed = re.findall(r'mutableMapOf<String, Any>\("(\w+)" to \w+\)', snippet)
    assert inputs and outputs and runs and fed, "the snippet's signature calls were not found"
    from ai_edge_litert.interpreter import Interpreter
    signatures = Interpreter(model_path=shipped[1]["deployed"]).get_signature_list()
    for name, key in inputs:
        if name != "label":  # conditional files only: tests/export/test_conditional_export.py
            assert name in signatures[key]["inputs"], (name, key)
    for name, key in outputs:
        assert name in signatures[key]["outputs"], (name, key)
    for output_name, key in runs:
        assert fed == signatures[key]["inputs"] and [output_name] == signatures[key]["outputs"]
    # The snippet writes one byte per value and reads the scale and zero point: the shipped
    # file's I/O must be int8.
    card = read_model_card(read_tflite(shipped[1]["deployed"]))
    assert "toByte()" in snippet and "quantizationParams()" in snippet
    assert card["signature"]["inputs"]["z"]["dtype"] == "int8"
    assert card["signature"]["outputs"]["image"]["dtype"] == "int8"


@pytest.mark.slow
def test_litert_benchmark_tool_runs_the_shipped_file_by_signature(shipped, tmp_path):
    def bench(path):
        return subprocess.run(
            [sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model",
             f"--model={path}", "--signature=serving_default", "--num_threads=1",
             "--num_runs=5", "--warmup_runs=1", "--verbose"],
            capture_output=True, text=True, timeout=300)

    result = bench(shipped[1]["deployed"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "Using signature: serving_default" in output and "BENCHMARK RESULTS" in output
    # The tool does check the signature: a file without one fails.
    import tensorflow as tf
    spec = tf.TensorSpec([1, 4], tf.float32, name="z")
    generator = build_generator(MODEL, seed=0)
    unsigned = tmp_path / "unsigned.tflite"
    unsigned.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda z: generator(z)).get_concrete_function(spec)]).convert())
    result = bench(str(unsigned))
    assert result.returncode != 0
    assert 'Signature "serving_default" not found' in result.stdout + result.stderr
