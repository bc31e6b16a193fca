"""Compresses the generator of a trained run: prune + recover -> QAT -> export -> verify ->
benchmark -> evaluate -> report.

    python experiments/train.py --run_dir=runs/mnist --dataset=idx:... --steps=4000
    python experiments/compress.py --run_dir=runs/mnist --target_sparsity=0.8

The data, model and training settings are read from the run's config.json. Rerunning resumes.
"""

import _cli
import _flags
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

flags.DEFINE_string("run_dir", None, "A run directory with a trained GAN.", required=True)
flags.DEFINE_integer("seed", 0, "Seed of the export and evaluation latents.")
_flags.define_compress_flags()
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    compress = _flags.compress_configs()
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
