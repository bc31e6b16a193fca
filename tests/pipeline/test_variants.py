"""Tests of the per-variant steps: where the benchmark copies go, and old runs' records."""

import os

from tfgan_opt import ExportConfig, ModelConfig
from tfgan_opt.export.litert import describe_tflite, read_tflite
from tfgan_opt.models import build_generator
from tfgan_opt.pipeline import variants

CONFIG = ExportConfig(formats=("float32",), representative_samples=4, verify_samples=4,
                      benchmark_batch=3)


def test_benchmark_copies_go_to_their_folder_and_old_records_keep_theirs(tmp_path):
    generator = build_generator(ModelConfig(image_size=8, latent_dim=4, width=4), seed=0)
    records = variants.variant_records({"dense": generator}, CONFIG.formats)
    records = variants.export_variants(records, {"dense": generator}, str(tmp_path / "export"),
                                       CONFIG)
    exported = [r for r in records if r["file"]]
    assert [os.path.basename(r["file"]) for r in exported] == ["dense_float32.tflite"]
    assert os.listdir(tmp_path / "export") == ["dense_float32.tflite"]  # no batch copies

    files_dir = str(tmp_path / "benchmark" / "files")
    new = variants.export_benchmark_files(records, {"dense": generator}, files_dir, CONFIG)
    large = [r["file_large_batch"] for r in new if r["file"]]
    assert large == [os.path.join(files_dir, "dense_float32.b3.tflite")]
    assert describe_tflite(read_tflite(large[0]))["inputs"][0]["shape"] == [3, 4]

    # A run whose export stage finished before the copies moved: its record names export/...b3.
    old_copy = str(tmp_path / "export" / "dense_float32.b3.tflite")
    os.rename(large[0], old_copy)
    old = [dict(r, file_large_batch=old_copy) if r["file"] else r for r in records]
    again = variants.export_benchmark_files(old, {"dense": generator}, files_dir, CONFIG)
    assert [r.get("file_large_batch") for r in again if r["file"]] == [old_copy]
    assert os.listdir(files_dir) == []
