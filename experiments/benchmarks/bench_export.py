"""Size, accuracy and latency of every export format of a 28x28 DCGAN generator.

Random weights are enough: latency and file size do not depend on training, and accuracy is
measured against the same Keras generator. Also exports an 80%-magnitude-pruned copy (dense
and sparse encodings) to compare gzipped sizes with the dense float32 file.

Latency is timed in one process, variants interleaved round by round (see
`tfgan_opt.benchmark.time_runners`); on a shared CPU only the ratios are meaningful.

    PYTHONPATH=. python experiments/benchmarks/bench_export.py --out_dir=runs/bench_export
"""

import os

import numpy as np
from absl import app, flags

from tfgan_opt.export import benchmark
from tfgan_opt.export import tflite
from tfgan_opt.core.artifacts import atomic_write_json
from tfgan_opt.core.config import ExportConfig, ModelConfig
from tfgan_opt.models import build_generator

FLAGS = flags.FLAGS
flags.DEFINE_string("out_dir", "runs/bench_export", "Directory for the exported files and JSON.")
flags.DEFINE_integer("image_size", 28, "Generator output side.")
flags.DEFINE_integer("latent_dim", 64, "Latent size.")
flags.DEFINE_integer("width", 64, "DCGAN generator width.")
flags.DEFINE_float("sparsity", 0.8, "Fraction of each kernel zeroed in the pruned copy.")
flags.DEFINE_integer("runs_batch1", 300, "Timed batch-1 calls per variant.")
flags.DEFINE_integer("runs_batch64", 30, "Timed batch-64 calls per variant.")
flags.DEFINE_integer("rounds", 10, "Interleaving rounds.")
flags.DEFINE_integer("seed", 0, "Weights and latents seed.")
flags.DEFINE_bool("spread_weights", True,
                  "Redraw kernels with a fan-in scaled std so outputs cover [-1, 1]. The DCGAN "
                  "initializer (std 0.02) gives outputs near 1e-4, on which int8 rounds everything "
                  "to 0 and still scores a high PSNR.")

THREADS = (1, 2)
BATCHES = (1, 64)
KERAS = "keras"


def _spread_weights(generator, gain=1.8, seed=1):
    """Redraws every kernel from N(0, (gain / sqrt(fan_in))^2), in place (gain 1.8: output std
    about 0.4 through the DCGAN's BN-LeakyReLU-tanh stack)."""
    rng = np.random.default_rng(seed)
    for layer in generator.network.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            shape = kernel.shape.as_list()
            # Conv2DTranspose [k, k, out, in] at stride 2: each output sees ~k*k*in/4 inputs.
            fan_in = np.prod(shape[:-1]) if len(shape) == 2 else np.prod(shape[:2]) * shape[3] / 2
            kernel.assign(rng.normal(0, gain / np.sqrt(fan_in), shape).astype(np.float32))
    return generator


def _build(model_config):
    generator = build_generator(model_config, seed=FLAGS.seed)
    return _spread_weights(generator) if FLAGS.spread_weights else generator


def _magnitude_prune(generator, sparsity):
    """Zeroes the smallest ``sparsity`` fraction (by magnitude) of every kernel, in place."""
    for layer in generator.network.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            values = kernel.numpy()
            values[np.abs(values) < np.quantile(np.abs(values), sparsity)] = 0
            kernel.assign(values)
    return generator


def _batch_variants(generator, out_dir, config):
    """Batch-64 files: the batch-1 files have their batch fixed and cannot be resized."""
    return {fmt: tflite.export_tflite(
        generator, os.path.join(out_dir, f"generator_{fmt}_b64.tflite"), config, fmt, batch_size=64)
        for fmt in tflite.TFLITE_FORMATS}


def _latency(generator, files_by_batch, runs_by_batch):
    """Returns {(variant, batch, threads): stats}; Keras runs with threads 0 (TF's default)."""
    results = {}
    for batch in files_by_batch:
        runners = {(KERAS, batch, 0): benchmark.keras_runner(generator, batch)}
        for threads in THREADS:
            for name, path in files_by_batch[batch].items():
                runners[(name, batch, threads)] = benchmark.tflite_runner(path, threads, batch)
        results.update(benchmark.time_runners(runners, runs=runs_by_batch[batch],
                                              warmup=3, rounds=FLAGS.rounds))
    return results


def _print_table(title, header, rows):
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def _quality_rows(paths, reports):
    rows = []
    for fmt, path in paths.items():
        sizes, report = benchmark.file_sizes(path), reports[fmt]
        rows.append([fmt, f"{sizes['bytes']:,}", f"{sizes['gzip_bytes']:,}",
                     f"{report['psnr_db']:.1f}", f"{report['max_abs_error']:.4f}",
                     f"[{report['min']:.3f}, {report['max']:.3f}]",
                     report.get("delegate", "TF (SavedModel)").split(":")[0] + (
                         ")" if "failed" in report.get("delegate", "") else ""),
                     report.get("num_float_ops", "-")])
    return rows


def _latency_rows(latency, names):
    rows = []
    for name in names:
        row = [name]
        for batch in BATCHES:
            for threads in THREADS:
                key = (name, batch, 0 if name == KERAS else threads)
                if name == KERAS and threads != THREADS[0]:
                    row.append("")
                    continue
                ms = latency[key]["median_ms"]
                vs_float = latency[("float32", batch, key[2] or threads)]["median_ms"] / ms
                vs_keras = latency[(KERAS, batch, 0)]["median_ms"] / ms
                row.append(f"{ms:.2f} ({vs_float:.2f}x / {vs_keras:.2f}x)")
        rows.append(row)
    return rows


def _print_key_figures(latency, paths, pruned_paths):
    print("\nKey figures\n")
    for threads in THREADS:
        float32, int8 = latency[("float32", 1, threads)], latency[("int8", 1, threads)]
        per_round = np.divide(float32["round_medians_ms"], int8["round_medians_ms"])
        print(f"- int8 vs float32 TFLite, batch 1, {threads} thread(s): "
              f"{float32['median_ms'] / int8['median_ms']:.2f}x faster (per-round ratios "
              f"{per_round.min():.2f}-{per_round.max():.2f}x, median {np.median(per_round):.2f}x; "
              f"float32 per-round medians {min(float32['round_medians_ms']):.2f}-"
              f"{max(float32['round_medians_ms']):.2f} ms)")
    dense = benchmark.file_sizes(paths["float32"])
    for name in ("pruned_int8", "pruned_int8_sparse"):
        gzipped = benchmark.file_sizes(pruned_paths[name])["gzip_bytes"]
        print(f"- {name} gzip {gzipped:,} B: {dense['bytes'] / gzipped:.1f}x smaller than the "
              f"dense float32 file ({dense['bytes']:,} B), {dense['gzip_bytes'] / gzipped:.1f}x "
              f"than it gzipped")


def main(argv):
    del argv
    model_config = ModelConfig(arch="dcgan", image_size=FLAGS.image_size,
                               latent_dim=FLAGS.latent_dim, width=FLAGS.width)
    config = ExportConfig(seed=FLAGS.seed)
    generator = _build(model_config)
    dense_dir = os.path.join(FLAGS.out_dir, "dense")
    paths = {fmt: tflite.export_tflite(generator, os.path.join(dense_dir, f"generator_{fmt}.tflite"),
                                       config, fmt) for fmt in tflite.TFLITE_FORMATS}
    reports = {fmt: tflite.verify_tflite(path, generator, config) for fmt, path in paths.items()}
    files = {1: paths,
             64: _batch_variants(generator, dense_dir, config)}
    latency = _latency(generator, files, {1: FLAGS.runs_batch1, 64: FLAGS.runs_batch64})

    pruned = _magnitude_prune(_build(model_config), FLAGS.sparsity)
    pruned_dir = os.path.join(FLAGS.out_dir, "pruned")
    pruned_paths = {}
    for fmt in ("float32", "int8"):
        for sparse in (False, True):
            name = f"pruned_{fmt}" + ("_sparse" if sparse else "")
            pruned_paths[name] = tflite.export_tflite(
                pruned, os.path.join(pruned_dir, f"{name}.tflite"), config, fmt, sparse=sparse)
    pruned_reports = {name: tflite.verify_tflite(path, pruned, config)
                      for name, path in pruned_paths.items()}
    pruned_latency = _latency(pruned, {1: {"float32": paths["float32"], "int8": paths["int8"],
                                           **pruned_paths}}, {1: FLAGS.runs_batch1})

    quality_header = ["format", "bytes", "gzip bytes", "PSNR dB", "max err", "range", "delegate",
                      "float ops"]
    _print_table(f"Dense {FLAGS.image_size}x{FLAGS.image_size} DCGAN generator "
                 f"(latent {FLAGS.latent_dim}, width {FLAGS.width}), random weights"
                 f"{' (fan-in scaled)' if FLAGS.spread_weights else ''}",
                 quality_header, _quality_rows(paths, reports))
    latency_header = ["variant"] + [f"b{b} t{t} ms (vs f32 tflite / vs keras)"
                                    for b in BATCHES for t in THREADS]
    _print_table("Median latency per call (keras: TF default threads, shown under t1)",
                 latency_header, _latency_rows(latency, [KERAS] + list(tflite.TFLITE_FORMATS)))
    dense_float_bytes = benchmark.file_sizes(paths["float32"])["bytes"]
    rows = _quality_rows(pruned_paths, pruned_reports)
    for row, path in zip(rows, pruned_paths.values()):
        row.append(f"{dense_float_bytes / benchmark.file_sizes(path)['gzip_bytes']:.1f}x")
    _print_table(f"{FLAGS.sparsity:.0%} magnitude-pruned copy (PSNR vs the pruned Keras model)",
                 quality_header + ["dense f32 bytes / gzip"], rows)
    rows = []
    for name in ["float32", "int8"] + list(pruned_paths):
        row = [name if name.startswith("pruned") else f"dense_{name}"]
        for threads in THREADS:
            ms = pruned_latency[(name, 1, threads)]["median_ms"]
            dense_ms = pruned_latency[("float32", 1, threads)]["median_ms"]
            row.append(f"{ms:.2f} ({dense_ms / ms:.2f}x)")
        rows.append(row)
    _print_table("Batch-1 latency of pruned files, ms (speed-up vs dense float32 TFLite)",
                 ["variant"] + [f"b1 t{t}" for t in THREADS], rows)

    _print_key_figures(latency, paths, pruned_paths)
    atomic_write_json(os.path.join(FLAGS.out_dir, "bench_export.json"), {
        "reports": reports, "pruned_reports": pruned_reports,
        "latency": {"/".join(map(str, k)): v for k, v in latency.items()},
        "pruned_latency": {"/".join(map(str, k)): v for k, v in pruned_latency.items()},
        "sizes": {name: benchmark.file_sizes(path)
                  for name, path in {**paths, **pruned_paths}.items()}})


if __name__ == "__main__":
    app.run(main)
