"""Compresses a generator: prune + recover -> QAT -> export -> verify -> benchmark -> evaluate ->
report.

A trained run (data, model and training settings are read from its config.json):

    python experiments/train.py --run_dir=runs/mnist --dataset=idx:... --steps=4000
    python experiments/compress.py --run_dir=runs/mnist --target_sparsity=0.8

Your own Keras generator (a .keras file; Sequential or Functional; z -> images in [-1, 1]),
into a new run directory, with the dataset it was trained on:

    python experiments/compress.py --generator=g.keras [--discriminator=d.keras] \
        --dataset=idx:... --run_dir=runs/mine --channel_macs_target=0.3

Without --discriminator, a fresh discriminator is trained alongside the recovery fine-tunes
(--adversarial_weight=0 --feature_distill_weight=0: pure distillation). Rerunning resumes.
"""

import os

import _cli
import _flags
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

flags.DEFINE_string("run_dir", None, "A run directory with a trained GAN, or (with --generator) "
                    "a new one.", required=True)
flags.DEFINE_string("generator", None, "Your own generator as a .keras file (HDF5 and "
                    "SavedModel files are refused: they can run code when loaded).")
flags.DEFINE_string("discriminator", None, "Its discriminator (.keras), optional.")
flags.DEFINE_boolean("overwrite", False, "Replace a run directory that holds another run "
                     "(with --generator).")
flags.DEFINE_integer("seed", 0, "Seed of the export and evaluation latents.")
_flags.define_data_flags()
_flags.define_compress_flags()
FLAGS = _flags.FLAGS


def _compress_user_model(compress):
    from tfgan_opt import models  # imports TensorFlow: only once the flags are valid
    from tfgan_opt.pipeline import byo, stages

    generator = models.load_user_model(FLAGS.generator, "generator")
    discriminator = (models.load_user_model(FLAGS.discriminator, "discriminator")
                     if FLAGS.discriminator else None)
    config = byo.user_pipeline_config(generator, _flags.data_config(), **compress)
    rundir.prepare_run_dir(FLAGS.run_dir, config.to_dict(), overwrite=FLAGS.overwrite)
    byo.import_user_models(generator, discriminator, config, run_dir=FLAGS.run_dir,
                           source=os.path.abspath(FLAGS.generator))
    return stages.compress_run(config, run_dir=FLAGS.run_dir)


def main(argv):
    del argv
    compress = _flags.compress_configs()
    if FLAGS.discriminator and not FLAGS.generator:
        raise _cli.usage_error("--discriminator goes with --generator (a trained run has its own)")
    if FLAGS.generator:
        logging.info("Report: %s", _compress_user_model(compress))
        return
    from tfgan_opt.core.pipeline_config import COMPRESS_SECTIONS
    from tfgan_opt.pipeline import stages  # imports TensorFlow: only once the flags are valid

    config = stages.load_run_config(FLAGS.run_dir).replace(**compress)
    stages.check_evaluation(config)  # fails in seconds, before the run directory is touched
    # Every model file the stages will load is checked (zip .keras, no code) before any is run.
    stages.check_run_models(FLAGS.run_dir)
    with runlock.locked(FLAGS.run_dir):
        rundir.prepare_run_dir(
            FLAGS.run_dir, config.to_dict(COMPRESS_SECTIONS),
            remedy="to compress it another way, copy its train/ folder and config.json to a new "
                   "--run_dir and compress that")
        report = stages.compress_run(config, run_dir=FLAGS.run_dir, checked=True)
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
