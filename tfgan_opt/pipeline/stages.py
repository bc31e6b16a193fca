"""Pipeline stages over one run directory: dataset -> trainer -> compressed model -> files -> report.

Each stage is a function ``(config, run_dir) -> record`` that reads what the previous stage wrote
under the run directory, writes its own outputs under ``<run_dir>/<stage>/`` and records completion
last (`rundir.mark_stage_done`), so a rerun after a crash skips completed stages and resumes the
interrupted one from its checkpoints. ``config`` is always the one `PipelineConfig`.
"""

import os
import time

import tensorflow as tf
from absl import logging

from tfgan_opt import data as data_lib
from tfgan_opt import models
from tfgan_opt.compress import prune
from tfgan_opt.compress.channels import count_macs
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import RunDirError
from tfgan_opt.core.images import save_image_grid
from tfgan_opt.core.rundir import mark_stage_done, stage_done
from tfgan_opt.evaluation import feature_spaces
from tfgan_opt.evaluation import generators as generator_eval
from tfgan_opt.export import tflite
from tfgan_opt.pipeline import finetune, reference, ship, variants
# The scripts' entry points, checks run before a run directory is touched:
from tfgan_opt.pipeline.checks import (check_evaluation, check_run_models,  # noqa: F401
                                       check_train_checkpoints)
from tfgan_opt.pipeline.fork import load_run_config  # noqa: F401
from tfgan_opt.pipeline.conditional import ensure_classes, resolve_classes  # noqa: F401
from tfgan_opt.pipeline.report import write_pipeline_report
from tfgan_opt.training import distribute
from tfgan_opt.training.trainer import GANTrainer

SAMPLE_GRID = 64


def planned_stages(config):
    """The stages ``config`` runs, in order: train, [channels], [prune], qat, [dense_extra], export,
    benchmark, evaluate, package, report (`variants.STAGES` less the switched-off sections)."""
    off = {variants.CHANNELS: config.channels is None, variants.PRUNE: config.prune is None,
           variants.DENSE_EXTRA: not config.evaluation.same_steps_reference
           or reference.extra_steps(config) == 0}
    return [stage for stage in variants.STAGES if not off.get(stage)]


def _stage_label(config, stage):
    """``[k/N] <stage>``: where ``stage`` sits among the stages ``config`` runs."""
    planned = planned_stages(config)
    return f"[{planned.index(stage) + 1}/{len(planned)}] {stage}"


def seed_everything(train_config):
    """Seeds Python, NumPy and TensorFlow; with ``deterministic``, also enables op determinism."""
    keras.utils.set_random_seed(train_config.seed)
    if train_config.deterministic:
        tf.config.experimental.enable_op_determinism()


def train_gan(config, *, run_dir, strategy=None, dataset=None, label=None):
    """Trains a GAN into ``<run_dir>/train`` (resuming it if interrupted) and saves its networks.

    Args:
      config: `PipelineConfig`; this stage reads its ``data``, ``model``, ``loss`` and ``train``.
      run_dir: the run directory (see `rundir.prepare_run_dir`).
      strategy: optional ``tf.distribute.Strategy``. With more than one replica the generator's
        batch norm is synchronized across replicas, so the run trains like one device on the
        global batch. Under MultiWorkerMirroredStrategy every worker calls this with the same
        arguments; only the chief writes into ``run_dir`` (a filesystem all workers share).
      dataset: ``data.make_dataset(config.data)`` if the caller already opened it (to check the
        data before touching the run directory); None opens it here.
      label: the stage header (default ``[1/N] train``, N the stages ``config`` runs).

    Returns:
      The stage record: paths of ``generator.keras``, ``discriminator.keras`` and the final sample
      grid, steps, wall time and the last logged losses.
    """
    label = label or _stage_label(config, variants.TRAIN)
    done = stage_done(run_dir, variants.TRAIN)
    if done and done["steps"] >= config.train.steps:  # more --steps continues from the checkpoint
        logging.info("%s: already done (%d steps); skipping", label, done["steps"])
        return done
    logging.info("%s: %d steps", label, config.train.steps)
    config = ensure_classes(config)
    seed_everything(config.train)
    stage_dir = os.path.join(run_dir, variants.TRAIN)
    strategy = strategy or tf.distribute.get_strategy()
    if dataset is None:
        dataset = data_lib.make_dataset(config.data)
    with strategy.scope():
        generator = models.build_generator(
            config.model, seed=config.train.seed,
            sync_batch_norm=strategy.num_replicas_in_sync > 1)
        discriminator = models.build_discriminator(config.model, seed=config.train.seed)
    trainer = GANTrainer(generator, discriminator, config.loss, config.train, strategy=strategy,
                         acgan_weight=config.model.acgan_weight)
    start = time.time()
    history = trainer.train(dataset, run_dir=stage_dir)
    wall = time.time() - start
    record = {
        "generator": os.path.join(stage_dir, "generator.keras"),
        "discriminator": os.path.join(stage_dir, "discriminator.keras"),
        "samples": os.path.join(stage_dir, "samples.png"),
        "steps": config.train.steps,
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
    mark_stage_done(run_dir, variants.TRAIN, record)
    logging.info("%s done in %.1f s; samples: %s", label, wall, record["samples"])
    return record


def _run_stage(config, run_dir, stage, build):
    """Runs ``build(stage_dir) -> record`` unless ``stage`` already completed; returns the record."""
    label = _stage_label(config, stage)
    done = stage_done(run_dir, stage)
    if done is not None:
        logging.info("%s: already done; skipping", label)
        return done
    logging.info("%s", label)
    start = time.time()
    stage_dir = os.path.join(run_dir, stage)
    os.makedirs(stage_dir, exist_ok=True)
    record = build(stage_dir)
    record["wall_seconds"] = round(time.time() - start, 1)
    mark_stage_done(run_dir, stage, record)
    logging.info("%s done in %.1f s", label, record["wall_seconds"])
    return record


def stage_train_config(train_config, steps):
    """The one rewrite of the `TrainConfig` a compression fine-tune of ``steps`` steps runs with:
    a few checkpoints per run so a kill loses little, and no EMA (the recovery trainer sets the
    steps and learning rates from its `RecoveryConfig`)."""
    every = max(1, min(train_config.checkpoint_every, max(steps, 1) // 4 or 1))
    return train_config.replace(checkpoint_every=every, log_every=min(train_config.log_every, every),
                                ema_decay=0.0)


def _finetune_args(config, stage_dir, steps):
    return {"loss_config": config.loss, "recovery_config": config.recovery,
            "run_dir": os.path.join(stage_dir, "trainer"),
            "train_config": stage_train_config(config.train, steps)}


def channels_stage(config, run_dir):
    """Removes whole channels of the trained generator (a narrower, faster network) and recovers it
    by distillation from the dense one; writes ``channels/generator.keras`` and the MACs."""

    def build(stage_dir):
        dense, discriminator = _load_stage_models(run_dir, variants.TRAIN)
        narrow, discriminator = finetune.channel_prune_gan(
            dense, discriminator, data_lib.make_dataset(config.data), config.channels,
            **_finetune_args(config, stage_dir, config.recovery.steps))
        return _save_stage_models(stage_dir, narrow, discriminator, {
            "macs_dense": count_macs(dense), "macs": count_macs(narrow)})

    return _run_stage(config, run_dir, variants.CHANNELS, build)


def _latest_compressed_stage(run_dir):
    """The stage whose models the next compression stage starts from: the latest of
    channels -> prune that completed, else train."""
    done = [stage for stage in (variants.CHANNELS, variants.PRUNE) if stage_done(run_dir, stage)]
    return done[-1] if done else variants.TRAIN


def prune_stage(config, run_dir):
    """Prunes the trained generator with tfmot (and recovers it); writes ``prune/generator.keras``.

    ``finetune`` mode prunes a BN-folded copy of the latest generator and fine-tunes it with
    distillation from it; ``during`` mode trains a fresh GAN while pruning it.
    """

    def build(stage_dir):
        args = _finetune_args(config, stage_dir, config.recovery.steps)
        if config.prune.mode == "during":
            model_config = ensure_classes(config).model
            generator = models.build_generator(model_config, seed=config.train.seed)
            discriminator = models.build_discriminator(model_config, seed=config.train.seed)
            args["train_config"] = config.train.replace(ema_decay=0.0)
        else:
            # After channel pruning the narrow generator is both the base and the teacher.
            generator, discriminator = _load_stage_models(run_dir,
                                                          _latest_compressed_stage(run_dir))
        pruned, discriminator = finetune.prune_gan(
            generator, discriminator, data_lib.make_dataset(config.data), config.prune, **args)
        return _save_stage_models(stage_dir, pruned, discriminator,
                                  {"sparsity": prune.sparsity_report(pruned)})

    return _run_stage(config, run_dir, variants.PRUNE, build)


def qat_stage(config, run_dir):
    """Quantization-aware fine-tune of the latest compressed (else the trained) generator, sparsity
    kept; writes ``qat/generator.keras`` and the sparsity before and after QAT."""

    def build(stage_dir):
        dense = _load_generator(run_dir, variants.TRAIN)
        student, discriminator = _load_stage_models(run_dir, _latest_compressed_stage(run_dir))
        before = prune.sparsity_report(student)["sparsity"]
        qat = finetune.quantize_aware_finetune(
            student, discriminator, data_lib.make_dataset(config.data), config.quantize,
            teacher=dense, **_finetune_args(config, stage_dir, config.quantize.steps))
        after = prune.sparsity_report(qat)
        if after["sparsity"] < before - 0.01:
            logging.warning("QAT lost sparsity: %.3f before, %.3f after", before, after["sparsity"])
        return _save_stage_models(stage_dir, qat, None, {"sparsity_before": before,
                                                         "sparsity": after})

    return _run_stage(config, run_dir, variants.QAT, build)


def dense_extra_stage(config, run_dir):
    """The dense GAN trained on for the steps compression added (`reference`): the quality
    reference that does not credit extra fine-tuning as a compression gain."""

    def build(stage_dir):
        seed_everything(config.train)
        return reference.continue_dense_training(config, run_dir, stage_dir,
                                                 data_lib.make_dataset(config.data))

    return _run_stage(config, run_dir, variants.DENSE_EXTRA, build)


def _load_generator(run_dir, stage):
    return models.load_generator(os.path.join(run_dir, stage, "generator.keras"))


def _load_stage_models(run_dir, stage):
    return (_load_generator(run_dir, stage),
            models.load_discriminator(os.path.join(run_dir, stage, "discriminator.keras")))


def _save_stage_models(stage_dir, generator, discriminator, record):
    record["generator"] = os.path.join(stage_dir, "generator.keras")
    models.save_network(generator, record["generator"])
    if discriminator is not None:
        record["discriminator"] = os.path.join(stage_dir, "discriminator.keras")
        models.save_network(discriminator, record["discriminator"])
    save_image_grid(os.path.join(stage_dir, "samples.png"),
                    generator.generate(SAMPLE_GRID, seed=0), scale=3)
    return record


def load_stage_generators(run_dir):
    """The generators the completed stages produced, by model key (`variants.MODEL_STAGES`)."""
    return {key: _load_generator(run_dir, stage) for key, stage in variants.MODEL_STAGES.items()
            if stage_done(run_dir, stage)}


def export_stage(config, run_dir):
    """Exports every variant to TFLite with its model card (and the SavedModel); verifies each."""

    def build(stage_dir):
        generators = load_stage_generators(run_dir)
        records = variants.variant_records(generators, config.export.formats)
        records = variants.export_variants(records, generators, stage_dir, config.export,
                                           card_for=ship.card_function(config, run_dir=run_dir))
        records = variants.verify_variants(records, generators, config.export)
        saved_model = tflite.export_saved_model(generators["dense"],
                                                os.path.join(stage_dir, "saved_model"),
                                                config.export)
        return {"variants": records, "saved_model": saved_model,
                "saved_model_check": tflite.verify_saved_model(saved_model, generators["dense"],
                                                               config.export)}

    return _run_stage(config, run_dir, variants.EXPORT, build)


def benchmark_stage(config, run_dir):
    """File sizes and interleaved latency of every variant (large-batch copies: benchmark/files)."""

    return _run_stage(config, run_dir, variants.BENCHMARK, lambda stage_dir: {
        "variants": variants.benchmark_with_files(
            stage_done(run_dir, variants.EXPORT)["variants"], load_stage_generators(run_dir),
            os.path.join(stage_dir, variants.BENCHMARK_FILES_DIR), config)})


def evaluate_stage(config, run_dir):
    """Sample quality of every variant, the real-vs-real floor and an untrained baseline."""
    evaluation = config.evaluation

    def build(stage_dir):
        generators = load_stage_generators(run_dir)
        real_images, real_labels, description = data_lib.load_arrays(
            config.data.replace(shuffle_buffer=0), describe=True)
        space = feature_spaces.resolve_feature_space(evaluation, real_labels is not None,
                                                     repr(config.data.source))
        extractor = generator_eval.domain_extractor(
            real_images, real_labels, evaluation.cache_dir or os.path.join(run_dir, "feature_cache"),
            space, evaluation.inception_weights)
        num = min(evaluation.num_samples, max(2, len(real_images)))
        records = variants.evaluate_variants(
            stage_done(run_dir, variants.BENCHMARK)["variants"], generators, extractor,
            real_images, real_labels, num, stage_dir, evaluation.seed)
        real_grid = save_image_grid(os.path.join(stage_dir, "samples_real.png"),
                                    real_images[:SAMPLE_GRID], scale=3)
        untrained = generator_eval.untrained_like(generators["dense"], evaluation.seed)
        untrained_images = generator_eval.generate(
            generator_eval.KerasGeneratorFunction(untrained), num, evaluation.seed)
        return {"variants": records, "num_real": len(real_images), "num_samples": num,
                "classifier_accuracy": extractor.accuracy, "feature_space": space,
                "features": feature_spaces.describe(extractor),
                "real_samples": real_grid,
                "data": description,
                "floor": generator_eval.noise_floor(extractor, real_images, real_labels,
                                                    evaluation.seed),
                "untrained": generator_eval.evaluate_images(extractor, real_images, real_labels,
                                                            untrained_images, evaluation.seed),
                "class_names": (data_lib.class_names(config.data, config.model.num_classes)
                                if config.model.conditional else None)}

    return _run_stage(config, run_dir, variants.EVALUATE, build)


def package_stage(config, run_dir):
    """Writes ``<run_dir>/ship/``: the files to deploy, with measured model cards (`ship`)."""
    return _run_stage(config, run_dir, variants.PACKAGE, lambda stage_dir: ship.ship_variants(
        stage_done(run_dir, variants.EVALUATE), load_stage_generators(run_dir), config,
        os.path.join(run_dir, variants.SHIP_DIR)))


def report_stage(config, run_dir):
    """Writes ``report.md`` (tables, sample grids, size-vs-quality plot) and ``summary.json``."""
    def build(stage_dir):
        del stage_dir
        return {"report": write_pipeline_report(
            run_dir, extra_steps=reference.extra_steps(config, run_dir))}

    return _run_stage(config, run_dir, variants.REPORT, build)


def compress_run(config, *, run_dir, checked=False):
    """The stages after training: [channel pruning + recover ->] [prune + recover ->] QAT ->
    [dense same-steps reference ->] export + verify -> benchmark -> evaluate -> package (ship/)
    -> report, on a run directory whose train stage is done. ``config.channels`` None skips
    channel pruning; ``config.prune`` None skips weight pruning (QAT of the dense or narrow
    generator).

    ``checked``: the caller already ran `check_evaluation` (else it runs first here).

    Returns:
      Path of ``<run_dir>/report.md``.

    Raises:
      ConfigError, ModelFileError: before any stage, if the run could not be evaluated.
    """
    config = ensure_classes(config)  # the class count the model cards and metrics need
    if not stage_done(run_dir, variants.TRAIN):
        raise RunDirError(f"{run_dir} has no trained GAN (train/stage.json); train it first with "
                          "experiments/train.py or run experiments/pipeline.py")
    if not checked and not stage_done(run_dir, variants.EVALUATE):
        check_evaluation(config)
    if config.channels is not None:
        channels_stage(config, run_dir)
    if config.prune is not None:
        prune_stage(config, run_dir)
    qat_stage(config, run_dir)
    if variants.DENSE_EXTRA in planned_stages(config):
        dense_extra_stage(config, run_dir)
    for stage in (export_stage, benchmark_stage, evaluate_stage, package_stage):
        stage(config, run_dir)
    return report_stage(config, run_dir)["report"]


def run_pipeline(config, *, run_dir, strategy=None, dataset=None, checked=False):
    """The whole pipeline: `train_gan`, then `compress_run`. Completed stages are skipped.

    ``dataset``: the training pipeline if the caller already opened it (see `train_gan`).
    ``checked``: the caller already ran `check_evaluation` (else it runs before training).

    Returns:
      Path of ``<run_dir>/report.md``.

    Raises:
      ConfigError, ModelFileError: before training, if the run could not be evaluated.
    """
    if not checked:
        check_evaluation(config)
    train_gan(config, run_dir=run_dir, strategy=strategy, dataset=dataset)
    return compress_run(config, run_dir=run_dir, checked=True)
