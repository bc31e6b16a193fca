"""The names the pipeline shares (stages, model keys, variants), and per-variant export,
verification, benchmarking and evaluation.

A *variant* is one model (``dense``, ``pruned``, ``qat``, ...) in one format (a TFLite format of
`tfgan_opt.export.tflite`, or ``keras`` for the in-memory model). Each step here takes the list of
variant records (plain dicts, see `tfgan_opt.pipeline.report`) and returns new records with its
own fields added, so the pipeline stages can persist them as JSON between steps.
"""

import os

import numpy as np
from absl import logging

from tfgan_opt.compress import prune
from tfgan_opt.compress.channels.graph import count_macs
from tfgan_opt.core.images import save_image_grid
from tfgan_opt.core.naming import slug
from tfgan_opt.evaluation import conditional as conditional_eval
from tfgan_opt.evaluation.generators import KerasGeneratorFunction, evaluate_images, generate
from tfgan_opt.export import benchmark, tflite
from tfgan_opt.export.litert import load_tflite_generator

# Stages, in pipeline order; each writes <run_dir>/<stage>/stage.json when done.
TRAIN, CHANNELS, PRUNE, QAT, DENSE_EXTRA, EXPORT, BENCHMARK, EVALUATE, PACKAGE, REPORT = (
    "train", "channels", "prune", "qat", "dense_extra", "export", "benchmark", "evaluate",
    "package", "report")
STAGES = (TRAIN, CHANNELS, PRUNE, QAT, DENSE_EXTRA, EXPORT, BENCHMARK, EVALUATE, PACKAGE, REPORT)
# The package stage's output: only the files to deploy and their model cards (no stage.json).
SHIP_DIR = "ship"
# The benchmark stage's large-batch copies of every file (never shipped).
BENCHMARK_FILES_DIR = "files"

# Model keys -> the stage whose generator.keras holds that model.
MODEL_STAGES = {"dense": TRAIN, "narrow": CHANNELS, "pruned": PRUNE, "qat": QAT,
                "dense_extra": DENSE_EXTRA}

# (variant name, model key, format). Keras rows are the in-memory models themselves.
DEFAULT_VARIANTS = (
    ("dense keras float32", "dense", "keras"),
    ("dense same-steps keras float32", "dense_extra", "keras"),
    ("dense float32", "dense", "float32"),
    ("dense float16", "dense", "float16"),
    ("dense dynamic-range", "dense", "dynamic_range"),
    ("dense int8", "dense", "int8"),
    ("dense int8 float-io", "dense", "int8_float_io"),
    ("channel-pruned float32", "narrow", "float32"),
    ("channel-pruned int8", "narrow", "int8"),
    ("pruned float32", "pruned", "float32"),
    ("pruned keras float32", "pruned", "keras"),
    ("pruned+QAT int8", "qat", "int8"),
    ("pruned+QAT int8 float-io", "qat", "int8_float_io"),
)
DENSE_KERAS = "dense keras float32"  # the quality reference
# The dense GAN trained for as many more steps as the compression fine-tunes added: the quality
# reference that does not credit extra fine-tuning as a compression gain.
DENSE_SAME_STEPS = "dense same-steps keras float32"
BASELINE = "dense float32"  # the size and speed reference
DENSE_INT8 = "dense int8"
DEPLOYED = "pruned+QAT int8"  # the file a phone ships: compressed, quantization-aware trained, int8
# The variants copied into ship/, with their measured quality in the model card: the headline file
# and its float-I/O twin (same network, float32 z and image, for apps that avoid int8 I/O code).
SHIPPED = (DEPLOYED, "pruned+QAT int8 float-io")


def variant_records(generators, formats, variants=DEFAULT_VARIANTS):
    """Records of the variants whose model is in ``generators`` (dict key -> Generator) and whose
    format is ``keras`` or one of ``formats``."""
    records = []
    for name, model, fmt in variants:
        if model in generators and (fmt == "keras" or fmt in formats):
            sparsity = prune.sparsity_report(generators[model])["sparsity"]
            records.append({"name": name, "model": model, "format": fmt, "file": None,
                            "sparsity": round(float(sparsity), 4),
                            "macs": model_macs(generators, model)})
    return records


def model_macs(generators, model):
    """Multiply-accumulates of one forward pass at batch 1 of ``generators[model]`` (QAT-wrapped
    layers are counted as the layers they wrap)."""
    return int(count_macs(generators[model])["macs"])


def export_variants(records, generators, out_dir, export_config, card_for=None):
    """Writes each TFLite variant at batch 1, the file a phone runs, into ``out_dir``.

    ``card_for``: optional function record -> model card (dict) embedded in the file.
    """
    records = [dict(record) for record in records]
    for record in records:
        if record["format"] == "keras":
            continue
        record["file"] = tflite.export_tflite(
            generators[record["model"]], os.path.join(out_dir, slug(record["name"]) + ".tflite"),
            export_config, record["format"], card=card_for(record) if card_for else None)
        logging.debug("Exported %s: %s (%.1f KiB)", record["name"], record["file"],
                      os.path.getsize(record["file"]) / 1024)
    return records


def export_benchmark_files(records, generators, out_dir, export_config):
    """Writes each TFLite variant at ``export_config.benchmark_batch`` into ``out_dir`` (to time
    it there) as ``file_large_batch``. Records that already name one keep it: runs exported before
    these copies moved out of ``export/`` resume with the files their records point to."""
    records = [dict(record) for record in records]
    batch = export_config.benchmark_batch
    for record in records:
        if record["file"] is None or not batch or os.path.exists(
                record.get("file_large_batch") or ""):
            continue
        record["file_large_batch"] = tflite.export_tflite(
            generators[record["model"]],
            os.path.join(out_dir, f"{slug(record['name'])}.b{batch}.tflite"), export_config,
            record["format"], batch_size=batch)
    return records


def benchmark_with_files(records, generators, files_dir, config):
    """`export_benchmark_files` into ``files_dir``, then `benchmark_variants` (``config``: the
    `PipelineConfig`)."""
    records = export_benchmark_files(records, generators, files_dir, config.export)
    return benchmark_variants(records, generators, config.export.benchmark_batch,
                              config.evaluation.benchmark_runs, config.evaluation.benchmark_rounds)


def verify_variants(records, generators, export_config):
    """Runs each file in a fresh LiteRT interpreter and compares it with its Keras model."""
    records = [dict(record) for record in records]
    for record in records:
        if record["file"] is None:
            continue
        check = tflite.verify_tflite(record["file"], generators[record["model"]], export_config)
        record.update({"psnr_db": check["psnr_db"], "max_abs_error": check["max_abs_error"],
                       "delegate": check["delegate"], "float_ops": check["num_float_ops"],
                       "ops": check["ops"], "in_range": check["in_range"],
                       "input_dtype": check["input_dtype"], "output_dtype": check["output_dtype"]})
    return records


def latency_settings(large_batch):
    """(key, batch, threads) of each latency measurement: batch 1 and ``large_batch`` (if > 0),
    1 and 2 threads."""
    batches = [1] + ([large_batch] if large_batch else [])
    return [(f"b{batch}_t{threads}", batch, threads) for batch in batches for threads in (1, 2)]


def benchmark_variants(records, generators, large_batch=64, runs=50, rounds=5):
    """File sizes and interleaved latency of every variant; ratios against ``BASELINE``."""
    records = [dict(record) for record in records]
    runners, settings = {}, latency_settings(large_batch)
    for record in records:
        if record["file"] is None:
            record.update({"bytes": None, "gzip_bytes": None})
            for key, batch, threads in settings:
                if threads == 1:  # Keras runs on TensorFlow's own thread pools
                    runners[(record["name"], key)] = benchmark.keras_runner(
                        generators[record["model"]], batch)
            continue
        record.update(benchmark.file_sizes(record["file"]))
        for key, batch, threads in settings:
            path = record["file"] if batch == 1 else record["file_large_batch"]
            runners[(record["name"], key)] = benchmark.tflite_runner(path, threads, batch)
    timings = benchmark.time_runners(runners, runs=runs, warmup=3, rounds=rounds)
    baseline = {key: timings.get((BASELINE, key)) for key, _, _ in settings}
    for record in records:
        record["latency_ms"] = {key: t["median_ms"] for (name, key), t in timings.items()
                                if name == record["name"]}
        record["speedup_vs_float32_tflite"] = {
            key: _round_ratio(baseline[key], t) for (name, key), t in timings.items()
            if name == record["name"] and baseline.get(key)}
    return records


def _round_ratio(baseline, timing):
    # Ratios within one round compare like with like on a machine whose load drifts.
    ratios = np.asarray(baseline["round_medians_ms"]) / np.asarray(timing["round_medians_ms"])
    return float(np.median(ratios))


def evaluate_variants(records, generators, extractor, real_images, real_labels, num_samples,
                      out_dir, seed=0):
    """Sample-quality metrics of every variant on ``num_samples`` seeded latents, and grids."""
    records = [dict(record) for record in records]
    for record in records:
        if record["file"] is None:
            function = KerasGeneratorFunction(generators[record["model"]])
        else:
            function = load_tflite_generator(record["file"])
        path = os.path.join(out_dir, f"samples_{slug(record['name'])}.png")
        num_classes = generators[record["model"]].num_classes
        if num_classes:  # conditional: every class in turn, grids with one row per class
            record["metrics"], record["samples"] = evaluate_conditional(
                function, num_classes, extractor, real_images, real_labels, num_samples, path,
                seed)
        else:
            images = generate(function, num_samples, seed)
            record["metrics"] = evaluate_images(extractor, real_images, real_labels, images,
                                                seed)
            record["samples"] = save_image_grid(path, images[:64], scale=3)
        logging.info("Evaluated %s: FD %.3f, classes covered %s", record["name"],
                     record["metrics"]["frechet_distance"], record["metrics"].get("classes_covered"))
    return records


def evaluate_conditional(function, num_classes, extractor, real_images, real_labels, num_samples,
                         grid_path, seed=0):
    """Metrics (`evaluation.conditional.compute_conditional_metrics`) of a conditional generator
    function, and its grid with one row per class; returns ``(metrics, grid path)``."""
    images, labels = conditional_eval.generate_for_classes(function, num_samples, num_classes,
                                                           seed)
    results = conditional_eval.compute_conditional_metrics(
        extractor, real_images, real_labels, images, labels, num_classes, seed)
    logging.info("%s: conditional accuracy %.3f, mean class FD %.3f", grid_path,
                 results["conditional_accuracy"] or 0.0, results["mean_class_fd"] or 0.0)
    rows = conditional_eval.class_rows(function, num_classes, seed=seed)
    return results, save_image_grid(grid_path, rows, columns=len(rows) // num_classes, scale=3)
