"""The fair quality reference: the dense GAN trained for as many steps as the compressed one.

The compressed generator starts from the trained dense one and then fine-tunes for the recovery
and QAT steps. Compared with the dense generator as trained, an undertrained dense GAN makes
compression look like a quality gain (the offline default once read "FD -47%"). `extra_steps`
counts the steps the compression fine-tunes added; `continue_dense_training` continues the dense
GAN from its last checkpoint, with its own loss and optimizer state, for that many steps.
"""

import os
import shutil

from tfgan_opt import models
from tfgan_opt.core.images import save_image_grid
from tfgan_opt.core.rundir import stage_done
from tfgan_opt.pipeline.variants import CHANNELS, TRAIN
from tfgan_opt.training.schedule import damage_steps
from tfgan_opt.training.trainer import GANTrainer


def extra_steps(config, run_dir=None):
    """Generator steps the compressed generator trained beyond the dense one's
    ``config.train.steps``: channel-pruning recovery, pruning recovery (``finetune`` mode; a
    ``during`` run trains from scratch for ``train.steps``) and QAT.

    Each recovery runs `schedule.damage_steps` for what it removed: the target sparsity, and for
    channel pruning the share of MACs its stage record in ``run_dir`` shows (before that stage has
    run, or without ``run_dir``, the share ``macs_target`` asks for).
    """
    steps = config.quantize.steps
    if config.channels is not None:
        steps += damage_steps(config.recovery, _channels_removed(config.channels, run_dir))
    if config.prune is not None and config.prune.mode == "finetune":
        steps += damage_steps(config.recovery, config.prune.target_sparsity)
    return steps


def _channels_removed(channels, run_dir):
    """The fraction of the MACs channel pruning removed (recorded) or is asked to remove."""
    record = stage_done(run_dir, CHANNELS) if run_dir else None
    if record and record.get("macs_dense", {}).get("macs"):
        removed = 1.0 - record["macs"]["macs"] / record["macs_dense"]["macs"]
    elif channels.macs_target is not None:
        removed = 1.0 - channels.macs_target
    else:
        removed = 0.0  # channel ratios: the MACs they remove are known once the stage has run
    return min(max(removed, 0.0), 1.0)


def continue_dense_training(config, run_dir, stage_dir, data):
    """Continues the dense GAN of ``<run_dir>/train`` for `extra_steps` more steps in
    ``stage_dir`` (a copy of its checkpoints, so the trained run is untouched) and saves the
    generator. ``data``: the training ``tf.data.Dataset``. Returns the stage record."""
    steps = config.train.steps + extra_steps(config, run_dir)
    trainer_dir = os.path.join(stage_dir, "trainer")
    checkpoints = os.path.join(trainer_dir, "checkpoints")
    if not os.path.isdir(checkpoints):  # a rerun resumes from its own checkpoints
        shutil.copytree(os.path.join(run_dir, TRAIN, "checkpoints"), checkpoints + ".tmp-copy")
        os.replace(checkpoints + ".tmp-copy", checkpoints)
    generator = models.build_generator(config.model, seed=config.train.seed)
    discriminator = models.build_discriminator(config.model, seed=config.train.seed)
    every = max(1, (steps - config.train.steps) // 2)
    trainer = GANTrainer(generator, discriminator, config.loss,
                         config.train.replace(steps=steps, checkpoint_every=every,
                                              log_every=max(config.train.log_every, every)))
    trainer.train(data, run_dir=trainer_dir)
    path = os.path.join(stage_dir, "generator.keras")
    models.save_network(trainer.final_generator(), path)
    final = trainer.final_generator()
    save_image_grid(os.path.join(stage_dir, "samples.png"), final.generate(64, seed=0), scale=3)
    return {"generator": path, "steps": steps, "extra_steps": steps - config.train.steps}
