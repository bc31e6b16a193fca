"""Compression stages that fine-tune: transform a generator (`tfgan_opt.compress`), then recover
its quality with `tfgan_opt.training.recovery` (distillation from the dense generator plus the
adversarial loss).

Each function here is "model -> compressed model, fine-tuned", with one argument order:
``(generator, discriminator, dataset, stage_config, *, loss_config, recovery_config, train_config,
run_dir)``, everything after the stage's own config by keyword.
"""

from absl import logging

from tfgan_opt.compress import prune
from tfgan_opt.compress.channels import count_macs
from tfgan_opt.compress.channels.narrow import narrow_with_config
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.compress.quantize import apply_qat
from tfgan_opt.core.compat import import_tfmot
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.training.recovery import recover
from tfgan_opt.training.schedule import damage_steps
from tfgan_opt.training.trainer import GANTrainer

tfmot = import_tfmot()  # not `import tensorflow_model_optimization`: see core/compat.py


def prune_gan(generator, discriminator, dataset, prune_config, *, loss_config,
              recovery_config=None, train_config=None, run_dir=None):
    """Runs one pruning stage in ``prune_config.mode`` and returns the stripped networks.

    - ``during``: trains ``generator`` (usually untrained) and ``discriminator`` for
      ``train_config.steps`` steps with `GANTrainer`, pruning the generator (and the
      discriminator if ``prune_discriminator``; only in this mode) on the way.
    - ``finetune``: folds the batch norms of a copy of the trained ``generator``
      (`compress.fold.fold_batch_norm`), prunes it and fine-tunes it for ``recovery_config.steps`` steps
      with `recovery.recover`, ``generator`` being the teacher.

    Args:
      generator, discriminator: `Generator`, `Discriminator` (left unpruned).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels).
      prune_config: `PruneConfig`.
      loss_config: `LossConfig`.
      train_config: `TrainConfig`; required in ``during`` mode, the base settings in
        ``finetune`` mode.
      recovery_config: `RecoveryConfig`; required in ``finetune`` mode; its steps grow with the
        target sparsity (`schedule.damage_steps`).
      run_dir: run directory of the trainer (None: in memory).

    Returns:
      (pruned generator, discriminator), both stripped of pruning wrappers.

    Raises:
      ConfigError: the config needed by the mode is missing, or see `apply_pruning`.
    """
    if prune_config.mode == "during":
        if train_config is None:
            raise ConfigError("mode='during' trains the GAN: pass a train_config")
        steps = train_config.steps
        student = prune.apply_pruning(generator, prune_config, steps)
        critic = (prune.apply_pruning(discriminator, prune_config, steps)
                  if prune_config.prune_discriminator else discriminator)
        trainer = GANTrainer(student, critic, loss_config, train_config,
                             callbacks=prune.pruning_callbacks(student, critic))
        trainer.train(dataset, run_dir=run_dir)
        student = prune.final_pruned_generator(trainer)
    else:
        if recovery_config is None:
            raise ConfigError("mode='finetune' fine-tunes a pruned copy: pass a recovery_config")
        critic = discriminator
        recovery_config = recovery_config.replace(
            steps=damage_steps(recovery_config, prune_config.target_sparsity))
        # Folded first: the student then trains as it will run (see recovery.RecoveryTrainer).
        student = prune.apply_pruning(fold_batch_norm(generator), prune_config,
                                      max(recovery_config.steps, 1))
        student = recover(student, generator, critic, dataset, recovery_config, loss_config,
                          run_dir=run_dir, train_config=train_config)
    if prune.pruned_layers(critic.network):
        critic = prune.strip_pruning(critic)
    return prune.strip_pruning(student), critic


def channel_prune_gan(generator, discriminator, dataset, channel_config, *, loss_config,
                      recovery_config, train_config=None, run_dir=None):
    """Channel-prunes a trained generator, BN-folds it and fine-tunes it with `recovery.recover`.

    Args:
      generator: trained dense `Generator`: pruned (a copy) and the distillation teacher.
      discriminator: `Discriminator` (updated unless ``recovery_config.train_discriminator`` is
        False).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels).
      channel_config: `ChannelPruneConfig`.
      recovery_config: `RecoveryConfig` (steps 0: no fine-tune); its steps grow with the fraction
        of MACs removed (`schedule.damage_steps`).
      loss_config: `LossConfig` of the adversarial term.
      run_dir, train_config: as for `recovery.recover`.

    Returns:
      (narrow BN-folded `Generator`, discriminator).
    """
    # Folded so the student trains as it runs (see recovery.RecoveryTrainer); scored unfolded so
    # that 'bn_scale' sees the BN layers.
    student = fold_batch_norm(narrow_with_config(generator, channel_config, discriminator))
    removed = 1.0 - count_macs(student)["macs"] / count_macs(generator)["macs"]
    recovery_config = recovery_config.replace(
        steps=damage_steps(recovery_config, min(max(removed, 0.0), 1.0)))
    student = recover(student, generator, discriminator, dataset, recovery_config, loss_config,
                      run_dir=run_dir, train_config=train_config)
    return student, discriminator


def quantize_aware_finetune(generator, discriminator, dataset, quantize_config, *, teacher,
                            loss_config, recovery_config=None, train_config=None, run_dir=None,
                            callbacks=()):
    """Wraps ``generator`` for QAT and fine-tunes it with distillation from ``teacher``.

    Args:
      generator: `Generator` to quantize (float; plain or pruned), unchanged.
      teacher: float `Generator` to distill (e.g. the dense one, or ``generator`` itself).
      discriminator: `Discriminator` (updated unless ``recovery_config.train_discriminator`` is
        False).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels).
      quantize_config: `QuantizeConfig`: steps, learning rate, ``preserve_sparsity``.
      loss_config: `LossConfig` of the adversarial term.
      recovery_config: `RecoveryConfig` for the loss weights (default: its defaults); its steps
        and learning rate are replaced by ``quantize_config``'s.
      callbacks, run_dir, train_config: as for `recovery.recover`.

    Returns:
      The QAT `Generator`; with ``quantize_config.steps == 0``, the BN-folded float generator
      instead (post-training quantization then happens at export).
    """
    if quantize_config.steps == 0:
        logging.info("QuantizeConfig.steps is 0: no QAT, returning the BN-folded float generator.")
        if prune.pruned_layers(generator.network):
            generator = prune.strip_pruning(generator)
        return fold_batch_norm(generator)
    student = apply_qat(generator, preserve_sparsity=quantize_config.preserve_sparsity)
    recovery_config = (recovery_config or RecoveryConfig()).replace(
        steps=quantize_config.steps, learning_rate=quantize_config.learning_rate)
    # In scope: an EMA copy (TrainConfig.ema_decay) clones the wrappers from their configs.
    with tfmot.quantization.keras.quantize_scope():
        return recover(student, teacher, discriminator, dataset, recovery_config, loss_config,
                       callbacks=callbacks, run_dir=run_dir, train_config=train_config)
