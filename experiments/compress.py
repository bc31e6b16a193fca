"""Compresses the generator of a trained run: prune + recover -> QAT -> export -> verify ->
benchmark -> evaluate -> report.

    python experiments/train.py --run_dir=runs/mnist --dataset=idx:... --steps=4000
    python experiments/compress.py --run_dir=runs/mnist --target_sparsity=0.8

The data, model and training settings are read from the run's config.json. Rerunning resumes.

To compress a trained run (made by train.py or pipeline.py) another way, start a new run directory
from it; its train/ folder is copied and the compression settings are yours:

    python experiments/compress.py --from_run=runs/mnist --run_dir=runs/mnist_s90 \
        --target_sparsity=0.9
"""

import _cli
import _flags
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

flags.DEFINE_string("run_dir", None, "A run directory with a trained GAN (or, with --from_run, "
                    "a new one).", required=True)
flags.DEFINE_string("from_run", None, "Start --run_dir from this run's trained GAN (copies its "
                    "train/ folder and data/model/training settings), to compress it another way.")
flags.DEFINE_integer("seed", 0, "Seed of the export and evaluation latents.")
_flags.define_compress_flags()
flags.adopt_module_key_flags(_flags)  # --help lists them, by group
flags.adopt_module_key_flags(_cli)  # --verbose
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    compress = _flags.compress_configs()
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
