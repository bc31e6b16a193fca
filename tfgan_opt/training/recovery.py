"""Quality recovery of a compressed generator: distillation from the dense one, plus the GAN loss.

The student (pruned and/or quantization-aware generator) and the teacher (the dense generator it was
made from) see the same z. The student's loss is

    adversarial_weight * L_adv(D(G_s(z)))
      + distill_weight * |G_s(z) - G_t(z)|_1
      + feature_distill_weight * |D_f(G_s(z)) - D_f(G_t(z))|_1

      + layer_distill_weight * sum_t w_t |f_t(S_t(z)) - T_t(z)|^2

with D_f the discriminator's penultimate features, as in GAN compression by distillation
(Aguinaldo et al. 2019; Li et al. 2020, "GAN Compression"), and S_t, T_t inner activations of
student and teacher through learnable width adapters f_t (`training.feature_distill`). Each term
is a mean over pixels or features, then over the global batch. The schedule (`training.schedule`):
optional cosine learning-rate decay and an EMA of the student, shipped in its place.
"""

import tensorflow as tf
from absl import logging

from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import TrainConfig
from tfgan_opt.compress.prune import final_pruned_generator, pruned_layers, pruning_callbacks
from tfgan_opt.training.feature_distill import FeatureDistiller
from tfgan_opt.training.schedule import LearningRateDecay
from tfgan_opt.training.trainer import GANTrainer


def _mean_abs_per_example(a, b):
    """Mean |a - b| over all but the batch axis: float32 [B]."""
    diff = tf.abs(a - b)
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def recovery_train_config(recovery_config, base=None):
    """The `TrainConfig` a recovery run uses: ``base`` (default `TrainConfig()`) with the
    recovery's steps, learning rate (for both networks) and student EMA."""
    base = base or TrainConfig()
    return base.replace(steps=max(recovery_config.steps, 1),
                        generator_lr=recovery_config.learning_rate,
                        discriminator_lr=recovery_config.learning_rate,
                        ema_decay=recovery_config.ema_decay)


class RecoveryTrainer(GANTrainer):
    """Fine-tunes a compressed student generator against a discriminator, distilling a teacher.

    Args:
      student: `Generator` to train (possibly pruning- or QAT-wrapped), best BN-folded: the
        trainer runs it in training mode, where BatchNormalization would use batch statistics
        while the teacher and deployment use the moving ones.
      teacher: dense `Generator` with the same latent and image shapes; never updated, always
        run in inference mode.
      discriminator: `Discriminator`; its features drive feature distillation.
      recovery_config: `RecoveryConfig` (weights, steps, learning rate, frozen discriminator).
      loss_config: `LossConfig` of the adversarial term.
      train_config: optional base `TrainConfig` (seed, logging, checkpoints); steps and learning
        rates come from ``recovery_config``.
      strategy, callbacks, is_chief: as for `GANTrainer`.

    Raises:
      ValueError: student and teacher shapes differ.
    """

    def __init__(self, student, teacher, discriminator, recovery_config, loss_config,
                 train_config=None, strategy=None, callbacks=(), is_chief=None):
        if (student.latent_dim, student.image_shape) != (teacher.latent_dim, teacher.image_shape):
            raise ValueError(f"student maps {student.latent_dim} -> {student.image_shape} but "
                             f"teacher maps {teacher.latent_dim} -> {teacher.image_shape}")
        # Every layer of the student trains, set before the optimizer sees its variables: a
        # saved EMA generator of older runs has every layer frozen, and fixed class vectors
        # (ModelConfig.class_vectors) are fixed in GAN training only, so that a student with
        # fewer channels may re-encode the class.
        student.network.trainable = True
        # The student copies the teacher's images, diversity included: no mode-seeking term.
        super().__init__(student, discriminator, loss_config.replace(mode_seeking_weight=0.0),
                         recovery_train_config(recovery_config, train_config), strategy=strategy,
                         callbacks=callbacks, is_chief=is_chief,
                         adversarial_weight=recovery_config.adversarial_weight,
                         train_discriminator=recovery_config.train_discriminator)
        self.teacher = teacher
        self.recovery_config = recovery_config
        self.feature_distiller = None
        if recovery_config.layer_distill_weight:
            with self.strategy.scope():
                self.feature_distiller = FeatureDistiller(
                    student, teacher, recovery_config.layer_distill_layers, seed=self.config.seed)
                self.adapter_optimizer = keras.optimizers.Adam(
                    recovery_config.learning_rate, beta_1=self.config.beta_1,
                    beta_2=self.config.beta_2)
                self.adapter_optimizer.build(self.feature_distiller.adapter_variables)
        if recovery_config.lr_schedule != "constant":
            optimizers = {"generator": (self.generator_optimizer, recovery_config.learning_rate),
                          "discriminator": (self.discriminator_optimizer,
                                            recovery_config.learning_rate)}
            if self.feature_distiller is not None:
                optimizers["adapters"] = (self.adapter_optimizer, recovery_config.learning_rate)
            self.callbacks.append(LearningRateDecay(optimizers, recovery_config.lr_schedule,
                                                    self.config.steps,
                                                    recovery_config.final_lr_fraction))
        if any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in student.network.layers):
            logging.warning("The student has BatchNormalization: it trains on batch statistics "
                            "but is evaluated (and distilled against a teacher) with moving ones; "
                            "fold_batch_norm it before compressing to train what is deployed.")

    def extra_generator_losses(self, z, fake_images, global_batch_size):
        """Weighted ``distill_loss`` (images) and ``feature_distill_loss`` (D features), scalars."""
        config = self.recovery_config
        if not (config.distill_weight or config.feature_distill_weight):
            return {}
        return self._output_distill_losses(fake_images, tf.stop_gradient(
            self.teacher(z, training=False)), global_batch_size)

    def _output_distill_losses(self, fake_images, target, global_batch_size):
        config = self.recovery_config
        losses = {}
        if config.distill_weight:
            per_example = _mean_abs_per_example(fake_images, target)
            losses["distill_loss"] = config.distill_weight * tf.nn.compute_average_loss(
                per_example, global_batch_size=global_batch_size)
        if config.feature_distill_weight:
            # Inference mode: the features are a fixed metric here, not something to update.
            student_features = self.discriminator.features(fake_images, training=False)
            teacher_features = tf.stop_gradient(self.discriminator.features(target,
                                                                            training=False))
            per_example = _mean_abs_per_example(student_features, teacher_features)
            losses["feature_distill_loss"] = (
                config.feature_distill_weight
                * tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size))
        return losses

    def _generator_step(self, batch):
        """`GANTrainer`'s generator step, with the student's inner activations taken from the same
        forward pass and distilled; the width adapters train beside the student."""
        if self.feature_distiller is None:
            return super()._generator_step(batch)
        z = self._generator_inputs(batch, "g")  # conditional: the same (z, label) for the teacher
        global_batch = tf.shape(batch["z_g"])[0] * self.strategy.num_replicas_in_sync
        distiller = self.feature_distiller
        with tf.GradientTape() as tape:
            fake, student_features = distiller.student_outputs(z, training=True)
            metrics, _ = self._generator_adversarial_loss(fake, global_batch,
                                                          labels=batch.get("y_g"))
            target, teacher_features = distiller.teacher_outputs(z)
            extra = self._output_distill_losses(fake, target, global_batch)
            extra["layer_distill_loss"] = self.recovery_config.layer_distill_weight * (
                tf.nn.compute_average_loss(distiller.loss(student_features, teacher_features),
                                           global_batch_size=global_batch))
            metrics.update(extra)
            loss = (self.adversarial_weight * metrics.get("g_adv_loss", 0.0)
                    + tf.add_n(list(extra.values())))
            loss += self._regularization(self.generator)
        variables = self.generator.trainable_variables
        adapters = distiller.adapter_variables
        gradients = tape.gradient(loss, variables + adapters)
        self.generator_optimizer.apply_gradients(zip(gradients[:len(variables)], variables))
        if adapters:
            self.adapter_optimizer.apply_gradients(zip(gradients[len(variables):], adapters))
        metrics["g_loss"] = loss
        return metrics

    def _checkpoint_object(self):
        checkpoint = super()._checkpoint_object()
        if self.feature_distiller is not None:  # a resumed recovery keeps its trained adapters
            checkpoint.feature_adapters = [adapter for adapter in self.feature_distiller.adapters
                                           if adapter is not None]
            checkpoint.adapter_optimizer = self.adapter_optimizer
        return checkpoint


def distillation_l1(student, teacher, z, batch_size=256):
    """Mean |student(z) - teacher(z)| in inference mode, a float (the unweighted image term).

    Args:
      student, teacher: `Generator` models with the same shapes.
      z: float32 [N, latent_dim].
      batch_size: latents per forward pass.
    """
    total = 0.0
    for i in range(0, len(z), batch_size):
        chunk = z[i:i + batch_size]
        diff = student(chunk, training=False) - teacher(chunk, training=False)
        total += float(tf.reduce_sum(tf.reduce_mean(tf.abs(tf.reshape(diff, [len(chunk), -1])),
                                                    axis=1)))
    return total / len(z)


def recover(student, teacher, discriminator, dataset, recovery_config, loss_config, callbacks=(),
            run_dir=None, train_config=None):
    """Fine-tunes ``student`` with `RecoveryTrainer` for ``recovery_config.steps`` steps.

    A pruning-wrapped student gets its pruning callback added unless ``callbacks`` has one for it.

    Args:
      student: `Generator` to train, in place.
      teacher: dense `Generator` (unchanged).
      discriminator: `Discriminator` (updated unless ``train_discriminator`` is False).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels) batches.
      recovery_config: `RecoveryConfig`.
      loss_config: `LossConfig`.
      callbacks: keras callbacks for `GANTrainer` (e.g. `prune.pruning_callbacks`).
      run_dir: checkpoints, logs and samples go here; None trains in memory.
      train_config: optional base `TrainConfig` (seed, logging and checkpoint intervals).

    Returns:
      The trained student `Generator` (still wrapped; strip it before export).
    """
    if recovery_config.steps == 0:
        logging.info("Recovery has 0 steps; the student is returned untrained.")
        return student
    callbacks = list(callbacks)
    covered = {id(getattr(callback, "model", None)) for callback in callbacks}
    if pruned_layers(student.network) and id(student.network) not in covered:
        callbacks += pruning_callbacks(student)
    trainer = RecoveryTrainer(student, teacher, discriminator, recovery_config, loss_config,
                              train_config=train_config, callbacks=callbacks)
    trainer.train(dataset, run_dir=run_dir)  # its last progress line is the final losses
    return final_pruned_generator(trainer)
