"""``--task`` on the pipeline scripts: image-to-image runs (issue 16).

``--task=unconditional`` (the default) keeps the scripts' GAN pipeline; any other task
(``sr_x4``, ``sr_x2``, ``denoise``, ``inpaint``, ``colorize``) runs `tfgan_opt.pipeline.i2i`
instead. The shared flags keep their meaning (``--dataset`` trains, ``--steps`` is the L1
pretraining, ``--width``, ``--batch_size``, ``--seed``, ``--limit``, ``--discriminator_width``,
``--adversarial_weight``, ``--channel_macs_target``, ``--target_sparsity``,
``--recovery_steps``, ``--qat_steps``); a shared flag not given on the command line takes the
image-to-image default of `I2IConfig`, not the GAN pipeline's.
"""

from absl import flags, logging

import _flags
from tfgan_opt.core.i2i_config import SHIP_GENERATORS, I2IConfig
from tfgan_opt.core.names import I2I_TASKS

FLAGS = flags.FLAGS
UNCONDITIONAL = "unconditional"
# Shared flag -> I2IConfig field, used only when given on the command line.
_SHARED = {"dataset": "train_source", "steps": "pretrain_steps", "width": "width",
           "batch_size": "batch_size", "seed": "seed", "limit": "limit",
           "discriminator_width": "discriminator_width",
           "adversarial_weight": "adversarial_weight",
           "channel_macs_target": "channel_macs_target", "target_sparsity": "target_sparsity",
           "recovery_steps": "recovery_steps", "qat_steps": "qat_steps"}
# I2I-only flag -> I2IConfig field.
_OWN = {"test_dataset": "test_source", "patch_size": "patch_size", "blocks": "blocks",
        "gan_steps": "gan_steps", "pretrain_lr": "pretrain_lr", "gan_lr": "gan_lr",
        "max_train_seconds": "max_train_seconds", "ship": "ship", "tile": "tile",
        "finetune_lr": "finetune_lr"}


def define_flags():
    defaults = I2IConfig()
    with _flags._group("image-to-image (--task)"):
        _flags._enum("task", UNCONDITIONAL, (UNCONDITIONAL,) + I2I_TASKS,
                     "unconditional: the GAN pipeline (noise -> image; class-conditional on "
                     "a labelled source, see --conditional). Otherwise an image-to-image task "
                     "trained on --dataset photos and measured on --test_dataset.")
        flags.DEFINE_string("test_dataset", defaults.test_source, "Evaluation images (--task).")
        flags.DEFINE_integer("patch_size", defaults.patch_size, "Clean training patch side.")
        flags.DEFINE_integer("blocks", defaults.blocks, "Residual blocks (SR) or U-Net levels.")
        flags.DEFINE_integer("gan_steps", defaults.gan_steps, "Adversarial fine-tune steps.")
        flags.DEFINE_float("pretrain_lr", defaults.pretrain_lr, "L1 pretraining learning rate.")
        flags.DEFINE_float("gan_lr", defaults.gan_lr, "Adversarial fine-tune learning rate.")
        flags.DEFINE_float("finetune_lr", defaults.finetune_lr, "Compression fine-tune rate.")
        flags.DEFINE_float("max_train_seconds", None, "Wall-clock cap of each training phase.")
        _flags._enum("ship", defaults.ship, SHIP_GENERATORS, "Generator compressed and shipped.")
        flags.DEFINE_integer("tile", defaults.tile, "Input side of the exported files.")
        flags.DEFINE_list("stages", [], "Run only these image-to-image stages (default all).")


def requested():
    return FLAGS.task != UNCONDITIONAL


def config():
    values = {field: FLAGS[flag].value for flag, field in _SHARED.items()
              if flag in FLAGS and FLAGS[flag].present}
    if "train_source" not in values:
        raise _flags.ConfigError("--task needs --dataset (a folder of training photos, say)")
    values.update({field: FLAGS[flag].value for flag, field in _OWN.items()})
    return I2IConfig(task=FLAGS.task, **values)


def run():
    """Runs the image-to-image pipeline for the flags; returns the report path."""
    i2i_config = config()
    # Deferred: TensorFlow loads only once the flags are valid.
    from tfgan_opt.core import runlock
    from tfgan_opt.pipeline import i2i

    stages = tuple(FLAGS.stages) or i2i.I2I_STAGES
    unknown = sorted(set(stages) - set(i2i.I2I_STAGES))
    if unknown:
        raise _flags.ConfigError(f"--stages: unknown {', '.join(unknown)}; choose from "
                                 f"{', '.join(i2i.I2I_STAGES)}")
    with runlock.locked(FLAGS.run_dir):
        records = i2i.run_i2i(i2i_config, FLAGS.run_dir, overwrite=FLAGS.overwrite,
                              stages=stages)
    logging.info("Stages done: %s", ", ".join(records))
    return records


def define_task_flag():
    """``--task`` alone (evaluate.py: the files and --dataset say the rest)."""
    _flags._enum("task", UNCONDITIONAL, (UNCONDITIONAL,) + I2I_TASKS,
                 "unconditional: GAN generators. Otherwise image-to-image files (.tflite or "
                 ".keras) scored on the --dataset images degraded by this task.")


def evaluate(paths, out_dir):
    """Scores image-to-image files on ``--dataset``; returns the scores."""
    from tfgan_opt.pipeline import i2i_report  # Deferred: TensorFlow loads once flags are valid.

    scores = i2i_report.evaluate_files(FLAGS.task, paths, FLAGS.dataset, out_dir, FLAGS.seed)
    for name, score in scores.items():
        logging.info("%s: PSNR %.2f dB, SSIM %.4f", name, score["mean_psnr"], score["mean_ssim"])
    return scores
