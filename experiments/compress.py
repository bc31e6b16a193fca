"""Compresses a generator: prune + recover -> QAT -> export -> verify -> benchmark -> evaluate ->
report.

A trained run (data, model and training settings are read from its config.json):

    python experiments/train.py --run_dir=runs/mnist --dataset=idx:... --steps=4000
    python experiments/compress.py --run_dir=runs/mnist --target_sparsity=0.8

The data, model and training settings are read from the run's config.json. Rerunning resumes.

To compress a trained run (made by train.py or pipeline.py) another way, start a new run directory
from it; its train/ folder is copied and the compression settings are yours:

    python experiments/compress.py --from_run=runs/mnist --run_dir=runs/mnist_s90 \
        --target_sparsity=0.9

Your own Keras generator (a .keras file; Sequential or Functional; z -> images in [-1, 1]),
into a new run directory, with the dataset it was trained on:

    python experiments/compress.py --generator=g.keras [--discriminator=d.keras] \
        --dataset=idx:... --run_dir=runs/mine --channel_macs_target=0.3

Without --discriminator, recovery is distillation from your generator only
(--without_discriminator=fresh trains a fresh discriminator alongside). Rerunning resumes.
"""

import os

import _cli
import _flags
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

flags.DEFINE_string("run_dir", None, "A run directory with a trained GAN, or (with --from_run or "
                    "--generator) a new one.", required=True)
flags.DEFINE_string("from_run", None, "Start --run_dir from this run's trained GAN (copies its "
                    "train/ folder and data/model/training settings), to compress it another way.")
flags.DEFINE_string("generator", None, "Your own generator as a .keras file (HDF5 and "
                    "SavedModel files are refused: they can run code when loaded).")
flags.DEFINE_string("discriminator", None, "Its discriminator (.keras), optional.")
flags.DEFINE_enum("without_discriminator", "distill", ["distill", "fresh"],
                  "Recovery of a --generator given without --discriminator: distill "
                  "(distillation from your generator only) or fresh (a fresh discriminator "
                  "trained alongside: adversarial and feature terms too).")
flags.DEFINE_boolean("overwrite", False, "Replace a run directory that holds another run "
                     "(with --generator).")
flags.DEFINE_integer("seed", 0, "Seed of the export and evaluation latents.")
_flags.define_data_flags()
_flags.define_compress_flags()
flags.adopt_module_key_flags(_flags)  # --help lists them, by group
flags.adopt_module_key_flags(_cli)  # --verbose
FLAGS = _flags.FLAGS


def _compress_user_model(compress):
    from tfgan_opt import models  # imports TensorFlow: only once the flags are valid
    from tfgan_opt.pipeline import byo, stages

    generator = models.load_user_model(FLAGS.generator, "generator")
    discriminator = (models.load_user_model(FLAGS.discriminator, "discriminator")
                     if FLAGS.discriminator else None)
    # The flag's default means nothing beside a --discriminator (main refuses it given there).
    mode = None if discriminator is not None else FLAGS.without_discriminator
    config = byo.user_pipeline_config(
        generator, _flags.data_config(),
        without_discriminator=byo.without_mode(discriminator is not None, mode), **compress)
    rundir.prepare_run_dir(FLAGS.run_dir, config.to_dict(), overwrite=FLAGS.overwrite)
    byo.import_user_models(generator, discriminator, config, run_dir=FLAGS.run_dir,
                           source=os.path.abspath(FLAGS.generator))
    return stages.compress_run(config, run_dir=FLAGS.run_dir)


def main(argv):
    del argv
    compress = _flags.compress_configs()
    if FLAGS.discriminator and not FLAGS.generator:
        raise _cli.usage_error("--discriminator goes with --generator (a trained run has its own)")
    if FLAGS["without_discriminator"].present and (FLAGS.discriminator or not FLAGS.generator):
        raise _cli.usage_error("--without_discriminator goes with --generator and no "
                               "--discriminator")
    if FLAGS.generator:
        logging.info("Report: %s", _compress_user_model(compress))
        return
    from tfgan_opt.core.pipeline_config import COMPRESS_SECTIONS
    from tfgan_opt.pipeline import stages  # imports TensorFlow: only once the flags are valid
    from tfgan_opt.pipeline.fork import fork_trained_run

    if FLAGS.from_run:
        stages.load_run_config(FLAGS.from_run)  # a clear error before anything is copied
        fork_trained_run(FLAGS.from_run, FLAGS.run_dir)
    config = stages.load_run_config(FLAGS.run_dir).replace(**compress)
    stages.check_evaluation(config)  # fails in seconds, before the run directory is touched
    # Every model file the stages will load is checked (zip .keras, no code) before any is run.
    stages.check_run_models(FLAGS.run_dir)
    with runlock.locked(FLAGS.run_dir):
        rundir.prepare_run_dir(
            FLAGS.run_dir, config.to_dict(COMPRESS_SECTIONS),
            remedy=f"to compress it another way, pass --from_run={FLAGS.run_dir} and a new "
                   "--run_dir")
        report = stages.compress_run(config, run_dir=FLAGS.run_dir, checked=True)
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
