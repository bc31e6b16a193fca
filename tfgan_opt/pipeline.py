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
from tfgan_opt import models
from tfgan_opt.compat import keras
from tfgan_opt.errors import ConfigError
from tfgan_opt.images import save_image_grid
from tfgan_opt.rundir import mark_stage_done, stage_done
from tfgan_opt.train import GANTrainer

TRAIN_STAGE = "train"


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
      strategy: optional ``tf.distribute.Strategy``.
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
        generator = models.build_generator(model_config, seed=train_config.seed)
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
    models.save_network(trainer.final_generator(), record["generator"])
    models.save_network(discriminator, record["discriminator"])
    save_image_grid(record["samples"], trainer.sample_grid(), scale=3)
    mark_stage_done(run_dir, TRAIN_STAGE, record)
    logging.info("Stage 'train' done in %.1f s; samples: %s", wall, record["samples"])
    return record
