"""Trains a GAN. Example:

    python experiments/train.py --dataset=idx:../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz \
        --run_dir=runs/mnist_dcgan --steps=2000

Rerunning the same command resumes from the last checkpoint.

Distributed: ``--strategy=mirrored`` (this machine's GPUs), ``--strategy=multi_worker`` (the same
command on every worker, each with its own ``TF_CONFIG``; ``--run_dir`` on a filesystem they
share), ``--strategy=tpu --tpu=<name>``. ``--batch_size`` is the global batch.
"""

import _cli
import _flags
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

_flags.define_run_flags()
_flags.define_data_flags()
_flags.define_model_flags()
_flags.define_train_flags()
_flags.define_distribute_flags()
flags.adopt_module_key_flags(_flags)  # --help lists them, by group
flags.adopt_module_key_flags(_cli)  # --verbose
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    config = _flags.pipeline_config()
    # Deferred: TensorFlow loads only once the flags are valid.
    from tfgan_opt import data
    from tfgan_opt.core.pipeline_config import TRAIN_SECTIONS
    from tfgan_opt.models import budget
    from tfgan_opt.pipeline import stages
    from tfgan_opt.training import distribute

    budget.check_fits(config.model, config.data.batch_size)
    strategy = _flags.make_strategy()  # before any other TensorFlow work (logical devices)
    # Conditional when the source has labels (unless --conditional says otherwise); the class
    # count is recorded in config.json. --conditional on unlabelled data: one line, now. (Reading
    # the labels may start TensorFlow: after the strategy, which must configure it first.)
    config = stages.resolve_classes(config, auto=_flags.conditioning_auto())
    # The data is opened before the run directory is touched, so a bad --dataset fails without
    # deleting anything, even with --overwrite. Seeding first gives its shuffle order the global
    # seed it would get inside train_gan.
    stages.seed_everything(config.train)
    dataset = data.make_dataset(config.data)
    stages.check_train_checkpoints(FLAGS.run_dir, FLAGS.overwrite)
    # The chief owns the run directory; other workers only read its checkpoints.
    chief = distribute.is_chief(strategy)
    with runlock.locked(FLAGS.run_dir, enabled=chief):
        if chief:
            rundir.prepare_run_dir(FLAGS.run_dir, config.to_dict(TRAIN_SECTIONS),
                                   overwrite=FLAGS.overwrite)
        record = stages.train_gan(config, run_dir=FLAGS.run_dir, strategy=strategy,
                                  dataset=dataset, label="[1/1] train")
    logging.info("Generator: %s  samples: %s", record["generator"], record["samples"])


if __name__ == "__main__":
    _cli.run(main)
