"""The compression frontier of one trained run: MACs target x weight sparsity -> deployed int8 file.

Every point is made the way the pipeline makes its deployed file (channel pruning + recovery ->
weight pruning + recovery -> QAT -> full-int8 TFLite), all from the same trained generator, then
measured: gzip size, batch-1 1-thread latency interleaved with the dense float32 file, and the
domain-classifier Frechet distance against the dense generator's. Points of one MACs target share
one channel-pruned generator. Finished points are recorded under ``<out_dir>/points`` and reused.
"""

import io
import os
import time

import numpy as np
from absl import logging

from tfgan_opt import data as data_lib
from tfgan_opt import models
from tfgan_opt.compress.channels import count_macs
from tfgan_opt.core.artifacts import (atomic_write_bytes, atomic_write_json, atomic_write_text,
                                      read_json)
from tfgan_opt.core.config import ChannelPruneConfig, PruneConfig
from tfgan_opt.evaluation import generators as generator_eval
from tfgan_opt.export import benchmark, tflite
from tfgan_opt.export.litert import load_tflite_generator
from tfgan_opt.pipeline import finetune, variants

_TRAIN_LOG = {"log_every": 100, "checkpoint_every": 10**6, "ema_decay": 0.0}


def point_name(macs_target, sparsity):
    return f"macs{macs_target:g}_sparsity{sparsity:g}"


def _narrow(config, run_dir, out_dir, macs_target, dataset):
    """The channel-pruned (and recovered) generator and discriminator of one MACs target, saved
    under ``out_dir`` and reused; target 1.0 is the trained run itself."""
    trained = os.path.join(run_dir, variants.TRAIN)
    dense = models.load_generator(os.path.join(trained, "generator.keras"))
    discriminator = models.load_discriminator(os.path.join(trained, "discriminator.keras"))
    if macs_target >= 1.0:
        return dense, discriminator
    directory = os.path.join(out_dir, f"channels_{macs_target:g}")
    paths = [os.path.join(directory, n) for n in ("generator.keras", "discriminator.keras")]
    if all(os.path.exists(p) for p in paths):
        return models.load_generator(paths[0]), models.load_discriminator(paths[1])
    channels = ChannelPruneConfig(macs_target=macs_target, criterion=config.channels.criterion
                                  if config.channels else "taylor")
    narrow, discriminator = finetune.channel_prune_gan(
        dense, discriminator, dataset, channels, loss_config=config.loss,
        recovery_config=config.recovery, train_config=config.train.replace(**_TRAIN_LOG))
    models.save_network(narrow, paths[0])
    models.save_network(discriminator, paths[1])
    return narrow, discriminator


def _make_point(config, dense, narrow, narrow_disc_path, sparsity, dataset, path):
    """Weight-prunes (sparsity > 0), QATs and exports one point; returns its int8 file record."""
    discriminator = models.load_discriminator(narrow_disc_path)
    student = narrow
    train_config = config.train.replace(**_TRAIN_LOG)
    if sparsity > 0:
        student, discriminator = finetune.prune_gan(
            narrow, discriminator, dataset,
            (config.prune or PruneConfig()).replace(target_sparsity=sparsity, mode="finetune"),
            loss_config=config.loss, recovery_config=config.recovery, train_config=train_config)
    qat = finetune.quantize_aware_finetune(
        student, discriminator, dataset, config.quantize, teacher=dense, loss_config=config.loss,
        recovery_config=config.recovery, train_config=train_config)
    return qat, tflite.export_tflite(qat, path, config.export, "int8")


def _quality(extractor, real, function, num, seed):
    metrics = generator_eval.evaluate_images(extractor, real[0], real[1],
                                             generator_eval.generate(function, num, seed), seed)
    return {"frechet_distance": float(metrics["frechet_distance"]),
            "classes_covered": metrics.get("classes_covered")}


def pareto_front(points, keys=("gzip_bytes", "latency_ratio", "fd_ratio")):
    """Names of the points no other point beats or equals on every key (lower is better)."""
    front = []
    for p in points:
        dominated = any(all(q[k] <= p[k] for k in keys) and any(q[k] < p[k] for k in keys)
                        for q in points if q is not p)
        if not dominated:
            front.append(p["name"])
    return front


def best_within_budget(points, fd_budget):
    """The point with the smallest file x latency among those within ``fd_budget`` of dense FD."""
    ok = [p for p in points if p["fd_ratio"] <= 1.0 + fd_budget]
    return min(ok, key=lambda p: p["gzip_bytes"] * p["latency_ratio"])["name"] if ok else None


def run_frontier(config, *, run_dir, out_dir, macs_targets, sparsities, fd_budget=0.10,
                 benchmark_runs=None, benchmark_rounds=None):
    """Builds and measures every (MACs target, sparsity) point of one trained run.

    Args:
      config: `PipelineConfig` of the run (recovery, quantize, export, evaluation sections used;
        ``channels.criterion`` if set, else ``taylor``; ``prune`` settings other than the sparsity).
      run_dir: run directory whose ``train`` stage is done.
      out_dir: where points, files, ``frontier.json``/``.md``/``.png`` go.
      macs_targets: fractions of the dense MACs kept (1.0: no channel pruning).
      sparsities: weight sparsities (0: no weight pruning).
      fd_budget: quality budget of `best_within_budget`.
      benchmark_runs, benchmark_rounds: latency timing (default: ``config.evaluation``'s).

    Returns:
      The ``frontier.json`` record: points, dense reference, Pareto front, best point, table.
    """
    start = time.time()
    os.makedirs(os.path.join(out_dir, "points"), exist_ok=True)
    evaluation = config.evaluation
    dataset = data_lib.make_dataset(config.data)
    real = data_lib.load_arrays(config.data.replace(shuffle_buffer=0))
    extractor = generator_eval.domain_extractor(
        real[0], real[1], evaluation.cache_dir or os.path.join(run_dir, "feature_cache"))
    num = min(evaluation.num_samples, max(2, len(real[0])))
    dense = models.load_generator(os.path.join(run_dir, variants.TRAIN, "generator.keras"))
    dense_file = tflite.export_tflite(dense, os.path.join(out_dir, "dense_float32.tflite"),
                                      config.export, "float32")
    dense_quality = _quality(extractor, real, generator_eval.KerasGeneratorFunction(dense), num,
                             evaluation.seed)
    dense_quality["classes_real"] = generator_eval.noise_floor(
        extractor, real[0], real[1], evaluation.seed).get("classes_covered")
    records = []
    for macs_target in macs_targets:
        for sparsity in sparsities:
            name = point_name(macs_target, sparsity)
            record_path = os.path.join(out_dir, "points", name + ".json")
            if os.path.exists(record_path):
                records.append(read_json(record_path))
                continue
            point_start = time.time()
            narrow, narrow_disc = _narrow(config, run_dir, out_dir, macs_target, dataset)
            disc_path = os.path.join(out_dir, f"discriminator_{macs_target:g}.keras")
            models.save_network(narrow_disc, disc_path)
            qat, int8 = _make_point(config, dense, narrow, disc_path, sparsity, dataset,
                                    os.path.join(out_dir, name + "_int8.tflite"))
            record = {"name": name, "macs_target": macs_target, "sparsity": sparsity,
                      "file": int8, "macs": int(count_macs(qat)["macs"]),
                      **benchmark.file_sizes(int8),
                      **_quality(extractor, real, load_tflite_generator(int8), num,
                                 evaluation.seed),
                      "wall_seconds": round(time.time() - point_start, 1)}
            atomic_write_json(record_path, record)
            logging.info("Frontier point %s: %s", name, record)
            records.append(record)
    latency = benchmark.time_runners(
        {"dense float32": benchmark.tflite_runner(dense_file),
         **{r["name"]: benchmark.tflite_runner(r["file"]) for r in records}},
        runs=benchmark_runs or evaluation.benchmark_runs,
        rounds=benchmark_rounds or evaluation.benchmark_rounds)
    result = summarize(records, latency, benchmark.file_sizes(dense_file), dense_quality,
                       count_macs(dense)["macs"], fd_budget)
    result["wall_seconds"] = round(time.time() - start, 1)
    atomic_write_json(os.path.join(out_dir, "frontier.json"), result)
    atomic_write_text(os.path.join(out_dir, "frontier.md"), result["table"] + "\n")
    plot_frontier(result, os.path.join(out_dir, "frontier.png"))
    return result


def summarize(records, latency, dense_sizes, dense_quality, dense_macs, fd_budget):
    """Adds the ratios to the dense float32 file and generator, the Pareto front and the table."""
    base = np.asarray(latency["dense float32"]["round_medians_ms"])
    points = []
    for r in records:
        ratios = base / np.asarray(latency[r["name"]]["round_medians_ms"])
        points.append({**r, "latency_ms": latency[r["name"]]["median_ms"],
                       "speedup": float(np.median(ratios)), "latency_ratio": float(1 / np.median(ratios)),
                       "size_ratio_raw": dense_sizes["bytes"] / r["gzip_bytes"],
                       "size_ratio_gzip": dense_sizes["gzip_bytes"] / r["gzip_bytes"],
                       "fd_ratio": r["frechet_distance"] / dense_quality["frechet_distance"],
                       "macs_ratio": dense_macs / max(r["macs"], 1)})
    front = pareto_front(points)
    best = best_within_budget(points, fd_budget)
    lines = ["| point | MACs | int8 gzip bytes | dense f32 raw / gzip | gzip / gzip | "
             "b1 1-thread speed-up | FD | FD vs dense | classes | Pareto | s |", "|" + " --- |" * 11]
    for p in points:
        mark = ("best" if p["name"] == best else "") + (" front" if p["name"] in front else "")
        lines.append(
            f"| {p['name']} | {p['macs_ratio']:.2f}x fewer | {p['gzip_bytes']:,} | "
            f"{p['size_ratio_raw']:.1f}x | {p['size_ratio_gzip']:.1f}x | {p['speedup']:.2f}x | "
            f"{p['frechet_distance']:.2f} | {100 * (p['fd_ratio'] - 1):+.1f}% | "
            f"{p['classes_covered']} | {mark.strip()} | {p['wall_seconds']} |")
    lines.append(f"\nDense float32 TFLite: {dense_sizes['bytes']:,} bytes ({dense_sizes['gzip_bytes']:,} "
                 f"gzip), {latency['dense float32']['median_ms']:.3f} ms; dense Keras FD "
                 f"{dense_quality['frechet_distance']:.2f}, {dense_quality['classes_covered']} classes "
                 f"(real data: {dense_quality['classes_real']}).")
    return {"points": points, "dense": {**dense_sizes, **dense_quality, "macs": dense_macs,
                                        "latency": latency["dense float32"]},
            "pareto_front": front, "best_within_budget": best, "fd_budget": fd_budget,
            "table": "\n".join(lines)}


def plot_frontier(result, path):
    """FD vs size (gzip bytes, log), colour = batch-1 speed-up, the Pareto front joined."""
    import matplotlib  # deferred: only the plot needs it, and it must get Agg before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred with matplotlib above

    points = result["points"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    scatter = ax.scatter([p["size_ratio_raw"] for p in points],
                         [100 * (p["fd_ratio"] - 1) for p in points],
                         c=[p["speedup"] for p in points], cmap="viridis", s=60, zorder=3)
    for p in points:
        ax.annotate(p["name"].replace("_sparsity", " / sp "), (p["size_ratio_raw"],
                    100 * (p["fd_ratio"] - 1)), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    front = sorted((p for p in points if p["name"] in result["pareto_front"]),
                   key=lambda p: p["size_ratio_raw"])
    ax.plot([p["size_ratio_raw"] for p in front], [100 * (p["fd_ratio"] - 1) for p in front],
            "--", color="grey", label="Pareto front (size, latency, FD)", zorder=2)
    ax.axhline(100 * result["fd_budget"], color="red", lw=0.8, label="FD budget")
    ax.margins(x=0.2)  # room for the labels of the outermost points
    ax.set_xscale("log")
    ax.set_xlabel("size reduction: dense float32 bytes / int8 gzip bytes (log)")
    ax.set_ylabel("FD vs dense generator (%)")
    fig.colorbar(scatter, ax=ax, label="batch-1 1-thread speed-up vs dense float32")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Compression frontier (one trained run)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
