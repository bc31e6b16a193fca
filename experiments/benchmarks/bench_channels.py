"""The MACs / latency / quality frontier of structured channel pruning on a trained DCGAN generator.

For each MACs target the trained generator is channel-pruned (`channels.channel_prune_gan`: a
uniform ratio meeting the target, BN folding, a short distillation + adversarial recovery),
exported to int8 TFLite (post-training, calibrated; with --qat_steps > 0, after QAT instead), and
scored with the domain classifier's Frechet distance and class coverage, both for the float Keras
model and for the int8 file. Latency is batch 1, one thread, every file timed in this process with
the variants interleaved round by round (`benchmark.time_runners`); speed-ups are against the dense
float32 TFLite file and are medians of per-round ratios, the only thing meaningful on a shared CPU.

    PYTHONPATH=. python experiments/benchmarks/bench_channels.py \
        --generator=runs/mnist/train/generator.keras --out_dir=runs/bench_channels --macs_targets=0.5,0.35,0.25,0.15,0.1
"""

import json
import os
import time

import numpy as np
from absl import app, flags, logging

from tfgan_opt import data, models
from tfgan_opt.export import benchmark
from tfgan_opt.compress import channels
from tfgan_opt.evaluation import generators
from tfgan_opt.export import tflite
from tfgan_opt.core.artifacts import atomic_write_json
from tfgan_opt.core.config import (ChannelPruneConfig, DataConfig, ExportConfig, LossConfig,
                                   QuantizeConfig, TrainConfig)
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.export.litert import load_tflite_generator
from tfgan_opt.compress.quantize import quantize_aware_finetune

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The README's MNIST pipeline run, and the real MNIST digits beside the checkout.
SNAPSHOT = os.path.join(REPO, "runs", "mnist", "train")
MNIST = os.path.join(REPO, "..", "shared", "data", "mnist-t10k", "t10k-images-idx3-ubyte.gz")
FLAGS = flags.FLAGS
flags.DEFINE_string("generator", f"{SNAPSHOT}/generator.keras", "Trained generator (.keras).")
flags.DEFINE_string("discriminator", f"{SNAPSHOT}/discriminator.keras", "Its discriminator.")
flags.DEFINE_string("dataset", f"idx:{MNIST}", "Real data (DataConfig.source), with labels.")
flags.DEFINE_string("out_dir", os.path.join(REPO, "runs", "bench_channels"),
                    "Files, logs and the JSON go here.")
flags.DEFINE_string("cache_dir", os.path.join(REPO, "runs", "feature_cache"),
                    "Feature-classifier cache.")
flags.DEFINE_list("macs_targets", ["0.5", "0.35", "0.25", "0.15", "0.1"],
                  "Fractions of the dense MACs to keep, one frontier point each.")
flags.DEFINE_enum("criterion", "taylor", sorted(channels.CRITERIA), "Channel importance.")
flags.DEFINE_integer("recovery_steps", 300, "Recovery fine-tune steps per point.")
flags.DEFINE_float("learning_rate", 5e-4, "Recovery learning rate.")
flags.DEFINE_integer("batch_size", 64, "Recovery batch size.")
flags.DEFINE_integer("qat_steps", 0, "QAT steps before int8 export (0: post-training int8).")
flags.DEFINE_integer("num_samples", 5000, "Generated images per Frechet distance.")
flags.DEFINE_integer("runs", 400, "Timed batch-1 calls per file.")
flags.DEFINE_integer("rounds", 10, "Interleaving rounds.")


def _quality(extractor, real, fake_fn):
    result = generators.evaluate_images(extractor, real[0], real[1],
                                      generators.generate(fake_fn, FLAGS.num_samples, seed=1))
    return {"fd": result["frechet_distance"], "classes": result["classes_covered"]}


def _point(name, generator, discriminator, dense, real, extractor, dataset):
    """Prunes (unless ``name`` is dense), recovers, exports int8; returns the point's record."""
    start = time.time()
    if name == "dense":
        generator = fold_batch_norm(generator)  # as the pruned points are, so int8 is comparable
    else:
        generator, discriminator = channels.channel_prune_gan(
            generator, discriminator, dataset,
            ChannelPruneConfig(macs_target=float(name), criterion=FLAGS.criterion,
                               calibration_samples=512),
            RecoveryConfig(steps=FLAGS.recovery_steps, learning_rate=FLAGS.learning_rate),
            LossConfig(), train_config=TrainConfig(log_every=100, checkpoint_every=10**6))
    if FLAGS.qat_steps:
        generator = quantize_aware_finetune(
            generator, dense, discriminator, dataset, QuantizeConfig(steps=FLAGS.qat_steps),
            LossConfig(), train_config=TrainConfig(log_every=100, checkpoint_every=10**6))
    directory = os.path.join(FLAGS.out_dir, f"macs_{name}")
    models.save_network(generator, os.path.join(directory, "generator.keras"))
    int8 = tflite.export_tflite(generator, os.path.join(directory, "int8.tflite"),
                                ExportConfig(), "int8")
    macs = channels.count_macs(generator)
    return {"name": name, "macs": macs["macs"], "params": macs["params"], "int8": int8,
            "keras": _quality(extractor, real, generators.KerasGeneratorFunction(generator)),
            "int8_quality": _quality(extractor, real, load_tflite_generator(int8)),
            "widths": [group.channels for group in channels.channel_groups(generator)],
            "wall_seconds": round(time.time() - start, 1)}


def _speedups(latency, reference):
    base = np.asarray(latency[reference]["round_medians_ms"])
    return {name: float(np.median(base / np.asarray(stats["round_medians_ms"])))
            for name, stats in latency.items()}


def _table(points, latency, dense_float_fd):
    speedup = _speedups(latency, "dense_float32")
    dense_macs = points[0]["macs"]
    lines = ["| variant | MACs | MACs ratio | params | int8 b1 ms | speed-up vs dense f32 | "
             "FD float | FD int8 | FD int8 / dense | classes int8 | recovery+export s |",
             "|" + " --- |" * 11]
    lines.append(f"| dense float32 TFLite | {dense_macs:,} | 1.00x | {points[0]['params']:,} | "
                 f"{latency['dense_float32']['median_ms']:.3f} (f32) | 1.00x | "
                 f"{dense_float_fd:.2f} | - | - | - | - |")
    for p in points:
        label = ("dense int8" if p["name"] == "dense"
                 else f"target {p['name']}, widths {p['widths']}")
        lines.append(
            f"| {label} | {p['macs']:,} | {dense_macs / p['macs']:.2f}x | {p['params']:,} | "
            f"{latency[p['name']]['median_ms']:.3f} | {speedup[p['name']]:.2f}x | "
            f"{p['keras']['fd']:.2f} | {p['int8_quality']['fd']:.2f} | "
            f"{p['int8_quality']['fd'] / dense_float_fd:.3f} | {p['int8_quality']['classes']} | "
            f"{p['wall_seconds']} |")
    return "\n".join(lines)


def main(argv):
    del argv
    start = time.time()
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    real = data.load_arrays(DataConfig(source=FLAGS.dataset, image_size=28))
    extractor = generators.domain_extractor(real[0], real[1], FLAGS.cache_dir)
    dataset = data.make_dataset(DataConfig(source=FLAGS.dataset, image_size=28,
                                           batch_size=FLAGS.batch_size))
    dense = models.load_generator(FLAGS.generator)
    dense_float32 = tflite.export_tflite(dense, os.path.join(FLAGS.out_dir, "dense_float32.tflite"),
                                         ExportConfig(), "float32")
    dense_float_fd = _quality(extractor, real, generators.KerasGeneratorFunction(dense))["fd"]
    points = []
    for name in ["dense"] + FLAGS.macs_targets:
        # A fresh discriminator per point: recovery trains it.
        points.append(_point(name, dense, models.load_discriminator(FLAGS.discriminator), dense,
                             real, extractor, dataset))
        logging.info("Point %s: %s", name, json.dumps(points[-1]))
    runners = {"dense_float32": benchmark.tflite_runner(dense_float32)}
    runners.update({p["name"]: benchmark.tflite_runner(p["int8"]) for p in points})
    latency = benchmark.time_runners(runners, runs=FLAGS.runs, rounds=FLAGS.rounds)
    table = _table(points, latency, dense_float_fd)
    print(table)
    print(f"\nwall time {time.time() - start:.0f} s")
    atomic_write_json(os.path.join(FLAGS.out_dir, "bench_channels.json"), {
        "points": points, "latency": latency, "dense_float_fd": dense_float_fd, "table": table,
        "flags": {name: FLAGS[name].value for name in ("criterion", "recovery_steps",
                                                       "learning_rate", "qat_steps",
                                                       "num_samples", "macs_targets")},
        "wall_seconds": round(time.time() - start, 1)})


if __name__ == "__main__":
    app.run(main)
