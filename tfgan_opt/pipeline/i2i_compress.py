"""Compression and export stages of the image-to-image pipeline (`tfgan_opt.pipeline.i2i`).

``compress``: the shipped generator (L1 or GAN) goes through the same compressions as the GAN
pipeline's generators: channel pruning (the dependency graph ties the residual Adds, the U-Net's
Concatenates and depth_to_space's r*r channel groups) to a MACs target, then tfmot magnitude
pruning, then sparsity-preserving QAT; each followed by an L1 fine-tune on the training patches
with L1 distillation from the dense generator. ``export``: the dense float32 file (the reference
every size and speed ratio uses), the compressed float32 file and the compressed full-int8 file
(int8 in and out, the phone file), each verified in LiteRT with XNNPACK against its Keras model
and timed side by side at the tile size.
"""

import os

import numpy as np
from absl import logging

from tfgan_opt.compress import channels, prune, quantize
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.config import PruneConfig
from tfgan_opt.data import degrade
from tfgan_opt.export import benchmark, image_tflite
from tfgan_opt.models import save_network
from tfgan_opt.models.sr import at_size, load_image_generator
from tfgan_opt.training import i2i_trainer

FLOAT_FILE = "float.keras"   # compressed, before QAT
QAT_FILE = "qat.keras"
# Variant name -> (stage of its Keras model, file, format).
VARIANTS = {"dense_float32": "float32", "compressed_float32": "float32",
            "compressed_int8": "int8"}
_CALIBRATION_TILES = 16


def shipped_stage(config):
    return "pretrain" if config.ship == "l1" else "gan"


def _lr_patches(run, count, seed=7):
    low, _ = next(iter(run.dataset(seed).unbatch().batch(count)))
    return low.numpy()


def _channel_prune(run, dense):
    config = run.config
    side = config.patch_size // config.scale
    fixed = at_size(dense, side)
    narrowed = channels.channel_prune(fixed, macs_target=config.channel_macs_target,
                                      criterion="l1", recalibrate=False, seed=config.seed)
    macs = {"dense_macs_per_tile": channels.count_macs(at_size(dense, config.tile))["macs"],
            "pruned_macs_per_tile": channels.count_macs(at_size(narrowed, config.tile))["macs"]}
    narrowed = at_size(narrowed)
    record = i2i_trainer.train_l1(narrowed, run.dataset(2), config.recovery_steps,
                                  config.finetune_lr, teacher=dense, distill_weight=1.0,
                                  log_every=max(1, config.recovery_steps // 5),
                                  phase="channel recovery")
    return narrowed, {**macs, "channel_recovery": record}


def _weight_prune(run, generator, dense):
    config = run.config
    steps = max(1, config.recovery_steps)
    prune_config = PruneConfig(target_sparsity=config.target_sparsity,
                               frequency=max(1, min(50, steps // 10)))
    wrapped = prune.apply_pruning(generator, prune_config, steps)
    record = i2i_trainer.train_l1(wrapped, run.dataset(3), steps, config.finetune_lr,
                                  teacher=dense, distill_weight=1.0,
                                  callbacks=prune.pruning_callbacks(wrapped),
                                  log_every=max(1, steps // 5), phase="weight pruning")
    stripped = prune.strip_pruning(wrapped)
    return stripped, {"weight_pruning": record,
                      "sparsity": prune.sparsity_report(stripped)["sparsity"]}


def _qat(run, generator, dense):
    config = run.config
    qat = quantize.apply_qat(generator, preserve_sparsity=True, calibration_samples=8,
                             seed=config.seed)
    # Ranges from real degraded patches rather than the generic smooth-noise calibration.
    quantize.calibrate_ranges(qat, fold_batch_norm(generator), _lr_patches(run, 64))
    record = i2i_trainer.train_l1(qat, run.dataset(4), config.qat_steps, config.finetune_lr / 2,
                                  teacher=dense, distill_weight=1.0,
                                  log_every=max(1, config.qat_steps // 5), phase="qat")
    return qat, {"qat": record}


def run_compress(run):
    """Channel pruning -> weight pruning -> QAT, with L1 fine-tunes; writes ``float.keras``
    (compressed, float) and ``qat.keras`` in ``<run_dir>/compress``."""
    config = run.config
    dense = run.generator(shipped_stage(config))
    generator, record = dense, {"shipped": config.ship}
    if config.channel_macs_target is not None and config.channel_macs_target < 1:
        generator, extra = _channel_prune(run, dense)
        record.update(extra)
    if config.target_sparsity > 0:
        generator, extra = _weight_prune(run, generator, dense)
        record.update(extra)
    os.makedirs(os.path.join(run.run_dir, "compress"), exist_ok=True)
    save_network(generator, run.path("compress", FLOAT_FILE))
    qat, extra = _qat(run, generator, dense)
    record.update(extra)
    save_network(qat, run.path("compress", QAT_FILE))
    return record


def variant_models(run):
    """Variant name -> its Keras `ImageGenerator` (what each exported file is checked against)."""
    return {"dense_float32": run.generator(shipped_stage(run.config)),
            "compressed_float32": load_image_generator(run.path("compress", FLOAT_FILE)),
            "compressed_int8": load_image_generator(run.path("compress", QAT_FILE))}


def variant_path(run, name):
    return run.path("export", f"{name}.tflite")


def _tiles(run, count, seed):
    """Degraded tiles of the training photos at the file's input size."""
    config = run.config
    side = config.tile * config.scale
    images = [i for i in run.train_images if min(i.shape[:2]) >= side]
    rng = np.random.default_rng(seed)
    tiles = []
    for index in rng.integers(0, len(images), count):
        image = images[index]
        top = rng.integers(0, image.shape[0] - side + 1)
        left = rng.integers(0, image.shape[1] - side + 1)
        clean = image[None, top:top + side, left:left + side].astype(np.float32) / 127.5 - 1
        tiles.append(degrade.degrade(config.task, clean, [seed, int(index)]).numpy()[0])
    return np.stack(tiles)


def run_export(run):
    """Exports, verifies and benchmarks the variants; returns their records."""
    config = run.config
    os.makedirs(os.path.join(run.run_dir, "export"), exist_ok=True)
    models = variant_models(run)
    calibration, verification = _tiles(run, _CALIBRATION_TILES, 11), _tiles(run, 4, 12)
    card = {"task": config.task, "scale": config.scale, "shipped_generator": config.ship,
            "value_range": [-1.0, 1.0]}
    record = {}
    for name, fmt in VARIANTS.items():
        path = image_tflite.export_image_tflite(models[name], variant_path(run, name), fmt,
                                                config.tile, calibration,
                                                card=dict(card, variant=name))
        check = image_tflite.verify_image_tflite(path, models[name], verification)
        check.pop("model_card")
        record[name] = {"path": path, "verification": check, **benchmark.file_sizes(path)}
        logging.info("%s: %d bytes, PSNR vs Keras %.1f dB, %s", name, check["bytes"],
                     check["psnr_db"], check["delegate"])
    runners = {name: benchmark.tflite_runner(variant_path(run, name), num_threads=1)
               for name in VARIANTS}
    timing = benchmark.time_runners(runners, runs=30, warmup=3, rounds=5)
    for name in VARIANTS:
        record[name]["latency"] = timing[name]
    return record
