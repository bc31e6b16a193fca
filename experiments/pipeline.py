"""The whole pipeline: train -> channel-prune + recover -> prune + recover -> QAT -> export +
verify -> benchmark -> evaluate -> report.

    python experiments/pipeline.py --run_dir=runs/digits          # the offline default (digits)

    python experiments/pipeline.py --run_dir=runs/mnist \
        --dataset=idx:../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz \
        --image_size=28 --width=32 --discriminator_width=32 --steps=11000

A labelled source trains a class-conditional GAN (--noconditional: never). Writes
<run_dir>/report.md. Rerunning the same command resumes: completed stages are skipped and an
interrupted one continues from its checkpoints.
"""

import _cli
import _flags
import _i2i
from absl import flags, logging

from tfgan_opt.core import rundir, runlock

_flags.define_run_flags()
_flags.define_data_flags(image_size=16)
# A width-24 generator: the narrowest whose compressed file clears 10x at batch 1 (a width-16 one
# is held back by LiteRT's per-call cost; BUILD_NOTES.md, issue 13). The discriminator stays 16.
_flags.define_model_flags(width=24, discriminator_width=16)
# 10,000 steps: at 5,000 the dense GAN is still improving fast, so the same-steps reference runs
# away from a student distilled from it (BUILD_NOTES.md, issue 13). Ten progress lines keep the
# whole run's terminal under 80 lines.
_flags.define_train_flags(steps=10000, log_every=1000)
# The shipped file of issue 13: 15% of the MACs kept by channel pruning, then 40% of the weights
# allocated by sensitivity, each recovered with inner-feature distillation, a cosine learning
# rate and an EMA of the student, for steps in proportion to what was removed.
_flags.define_compress_flags(recovery_steps=300, qat_steps=200, num_samples=2000,
                             channel_macs_target=0.15, sparsity_allocation="sensitivity",
                             target_sparsity=0.4, layer_distill_weight=1.0,
                             recovery_steps_per_removed=1500, recovery_lr_schedule="cosine",
                             recovery_ema_decay=0.99)
_i2i.define_flags()  # --task=sr_x4 etc.: the image-to-image pipeline (issue 16)
flags.adopt_module_key_flags(_flags)  # --help lists them, by group
flags.adopt_module_key_flags(_cli)  # --verbose
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    if _i2i.requested():
        _i2i.run()
        return
    config = _flags.pipeline_config(**_flags.compress_configs())
    # Deferred: TensorFlow loads only once the flags are valid.
    from tfgan_opt import data
    from tfgan_opt.models import budget
    from tfgan_opt.pipeline import stages

    budget.check_fits(config.model, config.data.batch_size)
    # Conditional when the source has labels (unless --conditional says otherwise); the class
    # count is recorded in config.json. --conditional on unlabelled data: one line, now.
    config = stages.resolve_classes(config, auto=_flags.conditioning_auto())
    # The data is opened, and the evaluation's feature space checked against it (an unlabelled
    # source cannot use the classifier), before the run directory is touched: a bad --dataset or
    # --features fails in seconds without deleting anything, even with --overwrite.
    space = stages.check_evaluation(config)
    logging.info("Quality metrics will use the %s feature space", space)
    stages.seed_everything(config.train)
    dataset = data.make_dataset(config.data)
    stages.check_train_checkpoints(FLAGS.run_dir, FLAGS.overwrite)
    with runlock.locked(FLAGS.run_dir):
        rundir.prepare_run_dir(FLAGS.run_dir, config.to_dict(), overwrite=FLAGS.overwrite)
        report = stages.run_pipeline(config, run_dir=FLAGS.run_dir, dataset=dataset,
                                     checked=True)
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
