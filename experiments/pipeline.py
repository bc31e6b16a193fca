"""The whole pipeline: train -> prune + recover -> QAT -> export + verify -> benchmark -> evaluate -> report.

    python experiments/pipeline.py --run_dir=runs/digits          # the offline default (digits)

    python experiments/pipeline.py --run_dir=runs/mnist \
        --dataset=idx:../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz \
        --image_size=28 --width=32 --discriminator_width=32 --steps=4000

Writes <run_dir>/report.md. Rerunning the same command resumes: completed stages are skipped and an
interrupted one continues from its checkpoints.
"""

import _cli
import _flags
from absl import logging

from tfgan_opt.core import rundir

_flags.define_run_flags()
_flags.define_data_flags(image_size=16)
_flags.define_model_flags(width=16)
_flags.define_train_flags(steps=5000)
_flags.define_compress_flags(recovery_steps=300, qat_steps=200, num_samples=2000)
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    config = _flags.pipeline_config(**_flags.compress_configs())
    # Deferred: TensorFlow loads only once the flags are valid.
    from tfgan_opt import data
    from tfgan_opt.pipeline import stages

    # The data is opened before the run directory is touched, so a bad --dataset fails without
    # deleting anything, even with --overwrite (see experiments/train.py).
    stages.seed_everything(config.train)
    dataset = data.make_dataset(config.data)
    rundir.prepare_run_dir(FLAGS.run_dir, config.to_dict(), overwrite=FLAGS.overwrite)
    report = stages.run_pipeline(config, run_dir=FLAGS.run_dir, dataset=dataset)
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
