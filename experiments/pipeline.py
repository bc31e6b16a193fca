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

from tfgan_opt import rundir

_flags.define_run_flags()
_flags.define_data_flags(image_size=16)
_flags.define_model_flags(width=16)
_flags.define_train_flags(steps=1500)
_flags.define_compress_flags(recovery_steps=300, qat_steps=200, num_samples=2000)
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    configs = {"data": _flags.data_config(), "model": _flags.model_config(),
               "loss": _flags.loss_config(), "train": _flags.train_config(),
               **_flags.compress_configs()}
    from tfgan_opt import data, pipeline  # imports TensorFlow: only once the flags are valid

    pipeline.check_compatible(configs["data"], configs["model"])
    # The data is opened before the run directory is touched, so a bad --dataset fails without
    # deleting anything, even with --overwrite (see experiments/train.py).
    pipeline.seed_everything(configs["train"])
    dataset = data.make_dataset(configs["data"])
    rundir.prepare_run_dir(FLAGS.run_dir, {k: v.to_dict() if v else None
                                           for k, v in configs.items()}, overwrite=FLAGS.overwrite)
    report = pipeline.run_pipeline(
        FLAGS.run_dir, configs["data"], configs["model"], configs["loss"], configs["train"],
        configs["prune"], configs["recovery"], configs["quantize"], configs["export"],
        configs["evaluation"], dataset=dataset, channel_config=configs["channels"])
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
