"""The image-to-image pipeline (issue 16) over one run directory.

Stages, each recorded in ``<run_dir>/<stage>/stage.json`` and skipped on a rerun once done:

1. ``pretrain``: L1 training of the generator (`ImageGenerator`: the SR network for ``sr_x*``,
   the U-Net otherwise) -> ``pretrain/generator.keras``;
2. ``gan``: a copy fine-tuned with L1 + adversarial loss against a PatchGAN ->
   ``gan/generator.keras`` (the L1 generator is kept: they trade PSNR for realism);
3. ``compress``: the shipped generator channel-pruned, weight-pruned and QAT-trained, with L1
   fine-tunes (`tfgan_opt.pipeline.i2i_compress`);
4. ``export``: dense float32 and compressed int8 TFLite files ``[1, tile, tile, 3] ->
   [1, s*tile, s*tile, 3]``, verified in LiteRT, benchmarked side by side;
5. ``evaluate``: PSNR/SSIM (Y, border shaved) per variant against the baseline, patch FD,
   crops; ``report.md`` (`tfgan_opt.pipeline.i2i_report`).
"""

import os
import time

from absl import logging

from tfgan_opt.core.i2i_config import I2IConfig
from tfgan_opt.core.rundir import mark_stage_done, prepare_run_dir, stage_done
from tfgan_opt.data import paired
from tfgan_opt.models import save_network
from tfgan_opt.models.sr import (build_patchgan, build_sr_generator, build_unet_generator,
                                 load_image_generator)
from tfgan_opt.training import i2i_trainer

GENERATOR_FILE = "generator.keras"
I2I_STAGES = ("pretrain", "gan", "compress", "export", "evaluate")


def build_i2i_generator(config: I2IConfig):
    """The task's generator: the SR network for ``sr_x*``, a U-Net for same-size tasks."""
    if config.scale > 1:
        return build_sr_generator(config.scale, config.width, config.blocks, seed=config.seed)
    return build_unet_generator(config.width, config.blocks, seed=config.seed)


class I2IRun:
    """The data and files of one image-to-image run directory."""

    def __init__(self, config: I2IConfig, run_dir: str):
        self.config, self.run_dir = config, run_dir
        self._train_images = self._test_images = None

    def path(self, stage, name=GENERATOR_FILE):
        return os.path.join(self.run_dir, stage, name)

    @property
    def train_images(self):
        if self._train_images is None:
            self._train_images = paired.load_full_images(self.config.train_source,
                                                          self.config.limit)
        return self._train_images

    @property
    def test_images(self):
        if self._test_images is None:
            self._test_images = paired.load_full_images(self.config.test_source)
        return self._test_images

    def dataset(self, seed_offset=0):
        return paired.make_paired_dataset(self.train_images, self.config.task,
                                          self.config.patch_size, self.config.batch_size,
                                          seed=self.config.seed + seed_offset)

    def generator(self, stage):
        return load_image_generator(self.path(stage))


def run_pretrain(run: I2IRun):
    config = run.config
    generator = build_i2i_generator(config)
    record = i2i_trainer.train_l1(generator, run.dataset(), config.pretrain_steps,
                                  config.pretrain_lr, max_seconds=config.max_train_seconds,
                                  log_every=max(1, config.pretrain_steps // 20), phase="pretrain")
    os.makedirs(os.path.join(run.run_dir, "pretrain"), exist_ok=True)
    save_network(generator, run.path("pretrain"))
    return record


def run_gan(run: I2IRun):
    config = run.config
    generator = i2i_trainer.copy_generator(run.generator("pretrain"))
    discriminator = build_patchgan(config.discriminator_width, seed=config.seed + 1000)
    record = i2i_trainer.train_adversarial(
        generator, discriminator, run.dataset(1), config.gan_steps, config.gan_lr,
        config.adversarial_weight, max_seconds=config.max_train_seconds,
        log_every=max(1, config.gan_steps // 10))
    os.makedirs(os.path.join(run.run_dir, "gan"), exist_ok=True)
    save_network(generator, run.path("gan"))
    save_network(discriminator, run.path("gan", "discriminator.keras"))
    return record


def _stage_functions():
    # Deferred: the later stages pull in the exporter and the evaluation stack, which a run
    # that only trains does not need.
    from tfgan_opt.pipeline import i2i_compress, i2i_report

    return {"pretrain": run_pretrain, "gan": run_gan, "compress": i2i_compress.run_compress,
            "export": i2i_compress.run_export, "evaluate": i2i_report.run_evaluate}


def run_i2i(config: I2IConfig, run_dir: str, overwrite=False, stages=I2I_STAGES):
    """Runs (or resumes) the image-to-image pipeline in ``run_dir``.

    Args:
      config: `I2IConfig`.
      run_dir: run directory (created; a rerun skips finished stages).
      overwrite: replace a run directory that holds another configuration.
      stages: the stages to run, in `I2I_STAGES` order (earlier ones must be done).

    Returns:
      dict stage -> its record.

    Raises:
      RunDirError: ``run_dir`` holds another run (and not ``overwrite``).
      DataError: a source is missing or unreadable (checked before the directory is touched).
    """
    run = I2IRun(config, run_dir)
    run.train_images  # noqa: B018  (opens the data before the run directory is touched)
    run.test_images  # noqa: B018
    prepare_run_dir(run_dir, {"i2i": config.to_dict()}, overwrite=overwrite)
    functions, records = _stage_functions(), {}
    for stage in I2I_STAGES:
        if stage not in stages:
            continue
        done = stage_done(run_dir, stage)
        if done is not None:
            logging.info("Stage %s already done; skipped.", stage)
            records[stage] = done
            continue
        start = time.time()
        logging.info("Stage %s ...", stage)
        record = functions[stage](run)
        record["stage_seconds"] = time.time() - start
        os.makedirs(os.path.join(run_dir, stage), exist_ok=True)
        mark_stage_done(run_dir, stage, record)
        records[stage] = record
    return records
