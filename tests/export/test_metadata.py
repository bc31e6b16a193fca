"""Tests of the metadata writer: entries round-trip, the graph is untouched, buffers stay aligned."""

import json

import numpy as np
import pytest

from tfgan_opt.core.config import ExportConfig, ModelConfig
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.export import metadata, tflite
from tfgan_opt.export.litert import describe_tflite, run_signature
from tfgan_opt.models import build_generator

CONFIG = ExportConfig(representative_samples=16, verify_samples=8, seed=0)
CARD = {"name": "test generator", "latent_prior": {"text": "z ~ N(0, I)"}, "quality": None,
        "output_range": [-1.0, 1.0]}


@pytest.fixture(scope="module")
def generator():
    generator = build_generator(ModelConfig(image_size=8, latent_dim=4, width=4), seed=0)
    rng = np.random.default_rng(0)
    for weight in generator.network.trainable_weights:  # outputs that span [-1, 1]
        weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
    return generator


@pytest.fixture(scope="module", params=["float32", "int8"])
def converted(request, generator):
    return tflite.convert_tflite(generator, request.param, CONFIG)


def test_model_card_reads_back_and_converter_entries_are_kept(converted):
    assert metadata.read_model_card(converted) is None
    carded = metadata.embed_model_card(converted, CARD)
    assert metadata.read_model_card(carded) == CARD
    before, after = metadata.read_metadata(converted), metadata.read_metadata(carded)
    assert list(after) == list(before) + [metadata.MODEL_CARD_NAME]
    assert {k: after[k] for k in before} == before  # min_runtime_version, CONVERSION_METADATA


def test_embedding_again_replaces_the_card_instead_of_adding_one(converted):
    once = metadata.embed_model_card(converted, CARD)
    twice = metadata.embed_model_card(once, dict(CARD, quality={"frechet_distance": 1.5}))
    assert list(metadata.read_metadata(twice)).count(metadata.MODEL_CARD_NAME) == 1
    assert metadata.read_model_card(twice)["quality"] == {"frechet_distance": 1.5}


def test_file_with_card_runs_bit_identically_by_signature_with_xnnpack(converted):
    carded = metadata.embed_model_card(converted, CARD)
    z = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    keys = (tflite.SIGNATURE_KEY, tflite.INPUT_KEY, tflite.OUTPUT_KEY)
    plain, plain_delegate = run_signature(converted, z, *keys)
    with_card, card_delegate = run_signature(carded, z, *keys)
    assert plain_delegate == card_delegate == "XNNPACK"
    assert np.array_equal(plain, with_card)
    assert plain.std() > 0.1  # real images, not a constant that any file would reproduce
    assert describe_tflite(carded)["ops"] == describe_tflite(converted)["ops"]


def test_rewritten_buffers_start_on_16_byte_boundaries(converted):
    carded = metadata.embed_model_card(converted, CARD)
    alignments = metadata.buffer_alignments(carded)
    assert len(alignments) == len(metadata.buffer_alignments(converted)) + 1
    assert set(alignments) == {0}


def test_card_that_is_not_json_is_a_model_file_error(converted):
    broken = metadata.with_metadata(converted, metadata.MODEL_CARD_NAME, b"{not json")
    with pytest.raises(ModelFileError, match="broken.tflite.*not valid JSON"):
        metadata.read_model_card(broken, "broken.tflite")
    listed = metadata.with_metadata(converted, metadata.MODEL_CARD_NAME, json.dumps([1]).encode())
    with pytest.raises(ModelFileError, match="not a JSON object"):
        metadata.read_model_card(listed)


def test_export_embeds_the_card_with_the_files_own_signature(generator, tmp_path):
    path = tflite.export_tflite(generator, str(tmp_path / "g.tflite"), CONFIG, "int8", card=CARD)
    report = tflite.verify_tflite(path, generator, CONFIG)
    card = report["model_card"]
    assert {k: card[k] for k in CARD} == CARD
    signature = card["signature"]
    assert signature["key"] == "serving_default"
    z, image = signature["inputs"]["z"], signature["outputs"]["image"]
    assert (z["shape"], z["dtype"]) == ([1, 4], "int8")
    assert (image["shape"], image["dtype"]) == ([1, 8, 8, 1], "int8")
    # TFLite's int8 tanh output: a fixed step of 1/128 around zero point 0.
    np.testing.assert_allclose(image["quantization"]["scale"], 1 / 128, rtol=1e-6)
    assert image["quantization"]["zero_point"] == 0
    assert z["quantization"]["scale"] > 0
