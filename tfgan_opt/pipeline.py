"""Pipeline stages over one run directory: dataset -> trainer -> compressed model -> files -> report.

Each stage is a function that reads what the previous stage wrote under the run directory, writes
its own outputs under ``<run_dir>/<stage>/`` and records completion last (`rundir.mark_stage_done`),
so a rerun after a crash skips completed stages and resumes the interrupted one from its
checkpoints.
"""

import os
import time

import tensorflow as tf
from absl import logging

from tfgan_opt import data as data_lib
from tfgan_opt import distribute
from tfgan_opt import models
from tfgan_opt.compat import keras
from tfgan_opt.errors import ConfigError, RunDirError
from tfgan_opt.images import save_image_grid
from tfgan_opt.rundir import mark_stage_done, stage_done
from tfgan_opt.train import GANTrainer

TRAIN_STAGE = "train"
CHANNELS_STAGE = "channels"
PRUNE_STAGE = "prune"
QAT_STAGE = "qat"
EXPORT_STAGE = "export"
BENCHMARK_STAGE = "benchmark"
EVALUATE_STAGE = "evaluate"
REPORT_STAGE = "report"


def check_compatible(data_config, model_config):
    """Raises `ConfigError` unless the model makes images of the dataset's size and channels."""
    if (data_config.image_size, data_config.channels) != (model_config.image_size,
                                                           model_config.channels):
        raise ConfigError(
            f"the dataset yields {data_config.image_size}x{data_config.image_size}x"
            f"{data_config.channels} images but the model makes {model_config.image_size}x"
            f"{model_config.image_size}x{model_config.channels}; use the same image size and channels")


def seed_everything(train_config):
    """Seeds Python, NumPy and TensorFlow; with ``deterministic``, also enables op determinism."""
    keras.utils.set_random_seed(train_config.seed)
    if train_config.deterministic:
        tf.config.experimental.enable_op_determinism()


def train_gan(data_config, model_config, loss_config, train_config, run_dir, strategy=None,
              dataset=None):
    """Trains a GAN into ``<run_dir>/train`` (resuming it if interrupted) and saves its networks.

    Args:
      data_config, model_config, loss_config, train_config: the stage's configuration.
      run_dir: the run directory (see `rundir.prepare_run_dir`).
      strategy: optional ``tf.distribute.Strategy``. With more than one replica the generator's
        batch norm is synchronized across replicas, so the run trains like one device on the
        global batch. Under MultiWorkerMirroredStrategy every worker calls this with the same
        arguments; only the chief writes into ``run_dir`` (a filesystem all workers share).
      dataset: ``data.make_dataset(data_config)`` if the caller already opened it (to check the
        data before touching the run directory); None opens it here.

    Returns:
      The stage record: paths of ``generator.keras``, ``discriminator.keras`` and the final sample
      grid, steps, wall time and the last logged losses.
    """
    done = stage_done(run_dir, TRAIN_STAGE)
    if done and done["steps"] >= train_config.steps:  # more --steps continues from the checkpoint
        logging.info("Stage 'train' already done (%d steps); skipping.", done["steps"])
        return done
    check_compatible(data_config, model_config)
    seed_everything(train_config)
    stage_dir = os.path.join(run_dir, TRAIN_STAGE)
    strategy = strategy or tf.distribute.get_strategy()
    if dataset is None:
        dataset = data_lib.make_dataset(data_config)
    with strategy.scope():
        generator = models.build_generator(
            model_config, seed=train_config.seed,
            sync_batch_norm=strategy.num_replicas_in_sync > 1)
        discriminator = models.build_discriminator(model_config, seed=train_config.seed)
    trainer = GANTrainer(generator, discriminator, loss_config, train_config, strategy=strategy)
    start = time.time()
    history = trainer.train(dataset, run_dir=stage_dir)
    wall = time.time() - start
    record = {
        "generator": os.path.join(stage_dir, "generator.keras"),
        "discriminator": os.path.join(stage_dir, "discriminator.keras"),
        "samples": os.path.join(stage_dir, "samples.png"),
        "steps": train_config.steps,
        "wall_seconds_last_session": round(wall, 1),
        "last_metrics": history[-1] if history else None,
    }
    # Saving reads synchronized variables (an all-reduce across workers): every worker saves, the
    # non-chiefs into a temporary directory that is then deleted.
    with distribute.worker_write_dir(stage_dir, strategy, chief=trainer.is_chief) as out_dir:
        models.save_network(trainer.final_generator(), os.path.join(out_dir, "generator.keras"))
        models.save_network(discriminator, os.path.join(out_dir, "discriminator.keras"))
        save_image_grid(os.path.join(out_dir, "samples.png"), trainer.sample_grid(), scale=3)
    if not trainer.is_chief:
        return record
    mark_stage_done(run_dir, TRAIN_STAGE, record)
    logging.info("Stage 'train' done in %.1f s; samples: %s", wall, record["samples"])
    return record


def _run_stage(run_dir, stage, build):
    """Runs ``build(stage_dir) -> record`` unless ``stage`` already completed; returns the record."""
    done = stage_done(run_dir, stage)
    if done is not None:
        logging.info("Stage '%s' already done; skipping.", stage)
        return done
    logging.info("===== Stage '%s' =====", stage)
    start = time.time()
    stage_dir = os.path.join(run_dir, stage)
    os.makedirs(stage_dir, exist_ok=True)
    record = build(stage_dir)
    record["wall_seconds"] = round(time.time() - start, 1)
    mark_stage_done(run_dir, stage, record)
    logging.info("Stage '%s' done in %.1f s.", stage, record["wall_seconds"])
    return record


def _stage_train_config(train_config, steps):
    # Recovery and QAT checkpoint a few times per run so a kill loses little, and use no EMA.
    every = max(1, min(train_config.checkpoint_every, max(steps, 1) // 4 or 1))
    return train_config.replace(checkpoint_every=every, log_every=min(train_config.log_every, every),
                                ema_decay=0.0)


def channels_stage(run_dir, data_config, loss_config, train_config, channel_config,
                   recovery_config):
    """Removes whole channels of the trained generator (a narrower, faster network) and recovers it
    by distillation from the dense one; writes ``channels/generator.keras`` and the MACs."""
    from tfgan_opt import channels

    def build(stage_dir):
        dense, discriminator = _load_trained(run_dir)
        narrow, discriminator = channels.channel_prune_gan(
            dense, discriminator, data_lib.make_dataset(data_config), channel_config,
            recovery_config, loss_config, run_dir=os.path.join(stage_dir, "trainer"),
            train_config=_stage_train_config(train_config, recovery_config.steps))
        return _save_stage_models(stage_dir, narrow, discriminator, {
            "macs_dense": channels.count_macs(dense), "macs": channels.count_macs(narrow)})

    return _run_stage(run_dir, CHANNELS_STAGE, build)


def _compressed_base(run_dir):
    """The generator and discriminator the next compression stage starts from: the latest of
    channels -> prune that completed, else the trained ones."""
    done = [stage for stage in (CHANNELS_STAGE, PRUNE_STAGE) if stage_done(run_dir, stage)]
    stage_dir = os.path.join(run_dir, done[-1] if done else TRAIN_STAGE)
    return (models.load_generator(os.path.join(stage_dir, "generator.keras")),
            models.load_discriminator(os.path.join(stage_dir, "discriminator.keras")))


def prune_stage(run_dir, data_config, model_config, loss_config, train_config, prune_config,
                recovery_config):
    """Prunes the trained generator with tfmot (and recovers it); writes ``prune/generator.keras``.

    ``finetune`` mode prunes a BN-folded copy of the trained generator and fine-tunes it with
    distillation from the dense one; ``during`` mode trains a fresh GAN while pruning it.
    """
    from tfgan_opt import prune

    def build(stage_dir):
        dataset = data_lib.make_dataset(data_config)
        if prune_config.mode == "during":
            generator = models.build_generator(model_config, seed=train_config.seed)
            discriminator = models.build_discriminator(model_config, seed=train_config.seed)
            base = train_config.replace(ema_decay=0.0)
        else:
            # After channel pruning the narrow generator is both the base and the teacher.
            generator, discriminator = _compressed_base(run_dir)
            base = _stage_train_config(train_config, recovery_config.steps)
        pruned, discriminator = prune.prune_gan(
            generator, discriminator, dataset, prune_config, loss_config, train_config=base,
            recovery_config=recovery_config, run_dir=os.path.join(stage_dir, "trainer"))
        return _save_stage_models(stage_dir, pruned, discriminator,
                                  {"sparsity": prune.sparsity_report(pruned)})

    return _run_stage(run_dir, PRUNE_STAGE, build)


def qat_stage(run_dir, data_config, loss_config, train_config, quantize_config, recovery_config):
    """Quantization-aware fine-tune of the pruned (else the trained) generator, sparsity kept.

    Writes ``qat/generator.keras`` and records the sparsity before and after QAT.
    """
    from tfgan_opt import prune, quantize

    def build(stage_dir):
        dense = _trained_generator(run_dir)
        student, discriminator = _compressed_base(run_dir)
        before = prune.sparsity_report(student)["sparsity"]
        qat = quantize.quantize_aware_finetune(
            student, dense, discriminator, data_lib.make_dataset(data_config), quantize_config,
            loss_config, recovery_config=recovery_config,
            run_dir=os.path.join(stage_dir, "trainer"),
            train_config=_stage_train_config(train_config, quantize_config.steps))
        after = prune.sparsity_report(qat)
        if after["sparsity"] < before - 0.01:
            logging.warning("QAT lost sparsity: %.3f before, %.3f after", before, after["sparsity"])
        return _save_stage_models(stage_dir, qat, None, {"sparsity_before": before,
                                                         "sparsity": after})

    return _run_stage(run_dir, QAT_STAGE, build)


def _trained_generator(run_dir):
    return models.load_generator(os.path.join(run_dir, TRAIN_STAGE, "generator.keras"))


def _load_trained(run_dir):
    return (_trained_generator(run_dir), models.load_discriminator(
        os.path.join(run_dir, TRAIN_STAGE, "discriminator.keras")))


def _save_stage_models(stage_dir, generator, discriminator, record):
    record["generator"] = os.path.join(stage_dir, "generator.keras")
    models.save_network(generator, record["generator"])
    if discriminator is not None:
        record["discriminator"] = os.path.join(stage_dir, "discriminator.keras")
        models.save_network(discriminator, record["discriminator"])
    save_image_grid(os.path.join(stage_dir, "samples.png"), generator.generate(64, seed=0), scale=3)
    return record


def load_stage_generators(run_dir):
    """The generators the completed stages produced: ``dense``, ``narrow``, ``pruned``, ``qat``."""
    generators = {"dense": _trained_generator(run_dir)}
    for key, stage in (("narrow", CHANNELS_STAGE), ("pruned", PRUNE_STAGE), ("qat", QAT_STAGE)):
        if stage_done(run_dir, stage):
            generators[key] = models.load_generator(os.path.join(run_dir, stage, "generator.keras"))
    return generators


def export_stage(run_dir, export_config):
    """Exports every variant to TFLite (and the dense SavedModel) and verifies each file."""
    from tfgan_opt import deploy, export

    def build(stage_dir):
        generators = load_stage_generators(run_dir)
        records = deploy.variant_records(generators, export_config.formats)
        deploy.export_variants(records, generators, stage_dir, export_config)
        deploy.verify_variants(records, generators, export_config)
        saved_model = export.export_saved_model(generators["dense"],
                                                os.path.join(stage_dir, "saved_model"),
                                                export_config)
        return {"variants": records, "saved_model": saved_model,
                "saved_model_check": export.verify_saved_model(saved_model, generators["dense"],
                                                               export_config)}

    return _run_stage(run_dir, EXPORT_STAGE, build)


def benchmark_stage(run_dir, export_config, evaluation_config):
    """File sizes and interleaved latency of every exported variant."""
    from tfgan_opt import deploy

    def build(stage_dir):
        del stage_dir
        records = stage_done(run_dir, EXPORT_STAGE)["variants"]
        deploy.benchmark_variants(records, load_stage_generators(run_dir),
                                  export_config.benchmark_batch, evaluation_config.benchmark_runs,
                                  evaluation_config.benchmark_rounds)
        return {"variants": records}

    return _run_stage(run_dir, BENCHMARK_STAGE, build)


def evaluate_stage(run_dir, data_config, evaluation_config):
    """Sample quality of every variant, the real-vs-real floor and an untrained baseline."""
    from tfgan_opt import deploy, evaluate

    def build(stage_dir):
        records = stage_done(run_dir, BENCHMARK_STAGE)["variants"]
        generators = load_stage_generators(run_dir)
        real_images, real_labels = data_lib.load_arrays(data_config.replace(shuffle_buffer=0))
        extractor = evaluate.domain_extractor(
            real_images, real_labels,
            evaluation_config.cache_dir or os.path.join(run_dir, "feature_cache"))
        num = min(evaluation_config.num_samples, max(2, len(real_images)))
        deploy.evaluate_variants(records, generators, extractor, real_images, real_labels, num,
                                 stage_dir, evaluation_config.seed)
        untrained = evaluate.untrained_like(generators["dense"], evaluation_config.seed)
        untrained_images = evaluate.generate(evaluate.KerasGeneratorFunction(untrained), num,
                                             evaluation_config.seed)
        return {"variants": records, "num_real": len(real_images), "num_samples": num,
                "classifier_accuracy": extractor.accuracy,
                "data": data_lib.describe_source(data_config),
                "floor": evaluate.noise_floor(extractor, real_images, real_labels,
                                              evaluation_config.seed),
                "untrained": evaluate.evaluate_images(extractor, real_images, real_labels,
                                                      untrained_images, evaluation_config.seed)}

    return _run_stage(run_dir, EVALUATE_STAGE, build)


def report_stage(run_dir):
    """Writes ``report.md`` (tables, sample grids, size-vs-quality plot) and ``summary.json``."""
    from tfgan_opt import pipeline_report

    def build(stage_dir):
        del stage_dir
        path = pipeline_report.write_pipeline_report(run_dir)
        return {"report": path}

    return _run_stage(run_dir, REPORT_STAGE, build)


def compress_run(run_dir, data_config, loss_config, train_config, model_config, prune_config,
                 recovery_config, quantize_config, export_config, evaluation_config,
                 channel_config=None):
    """The stages after training: [channel pruning + recover ->] prune + recover -> QAT ->
    export + verify -> benchmark -> evaluate -> report, on a run directory whose train stage is
    done. ``channel_config`` None skips channel pruning; ``prune_config`` None skips weight pruning
    (QAT of the dense or narrow generator).

    Returns:
      Path of ``<run_dir>/report.md``.
    """
    if not stage_done(run_dir, TRAIN_STAGE):
        raise RunDirError(f"{run_dir} has no trained GAN (train/stage.json); train it first with "
                          "experiments/train.py or run experiments/pipeline.py")
    if channel_config is not None:
        channels_stage(run_dir, data_config, loss_config, train_config, channel_config,
                       recovery_config)
    if prune_config is not None:
        prune_stage(run_dir, data_config, model_config, loss_config, train_config, prune_config,
                    recovery_config)
    qat_stage(run_dir, data_config, loss_config, train_config, quantize_config, recovery_config)
    export_stage(run_dir, export_config)
    benchmark_stage(run_dir, export_config, evaluation_config)
    evaluate_stage(run_dir, data_config, evaluation_config)
    return report_stage(run_dir)["report"]


def run_pipeline(run_dir, data_config, model_config, loss_config, train_config, prune_config,
                 recovery_config, quantize_config, export_config, evaluation_config,
                 strategy=None, dataset=None, channel_config=None):
    """The whole pipeline: `train_gan`, then `compress_run`. Completed stages are skipped.

    ``dataset``: the training pipeline if the caller already opened it (see `train_gan`).

    Returns:
      Path of ``<run_dir>/report.md``.
    """
    train_gan(data_config, model_config, loss_config, train_config, run_dir, strategy=strategy,
              dataset=dataset)
    return compress_run(run_dir, data_config, loss_config, train_config, model_config,
                        prune_config, recovery_config, quantize_config, export_config,
                        evaluation_config, channel_config)


def load_run_configs(run_dir):
    """The data, model, loss and train configs recorded in ``<run_dir>/config.json``."""
    from tfgan_opt.artifacts import read_json
    from tfgan_opt.config import DataConfig, LossConfig, ModelConfig, TrainConfig
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise RunDirError(f"{run_dir} is not a tfgan_opt run directory (no config.json)")
    recorded = read_json(path)
    classes = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
    missing = sorted(set(classes) - set(recorded))
    if missing:
        raise RunDirError(f"{path} records no {', '.join(missing)} configuration; "
                          "it was not made by experiments/train.py or pipeline.py")
    return {name: cls.from_dict(recorded[name]) for name, cls in classes.items()}
