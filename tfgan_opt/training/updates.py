"""The math of one update of `GANTrainer`, per replica: the discriminator, generator and
simultaneous steps, their penalties (WGAN-GP, R1) and regularization, and augmentation.

Losses are per-example and reduced with ``tf.nn.compute_average_loss`` over the GLOBAL batch, so N
replicas compute the same update as one device. Augmentation (DiffAugment) transforms what the
discriminator sees, real and fake alike, in both updates, with parameters drawn in the input
pipeline (`tfgan_opt.training.noise`).
"""

import tensorflow as tf

from tfgan_opt import losses as losses_lib
from tfgan_opt.models.base import kernel_weights
from tfgan_opt.training import augment as augment_lib


class UpdateRules:
    """Mixin of `GANTrainer` holding its update steps.

    Uses the trainer's ``generator``, ``discriminator``, ``loss`` (a `losses.GanLoss`),
    ``loss_config``, ``config`` (`TrainConfig`), ``strategy``, the two optimizers,
    ``adversarial_weight`` and ``train_discriminator``.
    """

    def _augment(self, images, batch, key):
        """``images`` as the discriminator sees them: augmented with ``batch[key]`` if enabled."""
        if not self.config.augment:
            return images
        return augment_lib.apply_augment(images, batch[key], self.config.augment)

    def _discriminator_step(self, batch):
        real = self._augment(batch["images"], batch, "aug_d")
        global_batch = tf.shape(real)[0] * self.strategy.num_replicas_in_sync
        fake = self._augment(self.generator(batch["z_d"], training=True), batch, "aug_d")
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            metrics = self._discriminator_loss(real_logits, fake_logits, global_batch)
            loss = metrics["d_adv_loss"]
            loss += self._discriminator_penalties(real, fake, batch, global_batch, metrics)
            loss += self._regularization(self.discriminator)
        variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics["d_loss"] = loss
        return metrics

    def _discriminator_loss(self, real_logits, fake_logits, global_batch):
        """Metrics ``d_adv_loss`` (reduced over the global batch) and the mean logits."""
        per_example = self.loss.discriminator_loss(real_logits, fake_logits)
        metrics = {"d_adv_loss": tf.nn.compute_average_loss(per_example,
                                                            global_batch_size=global_batch)}
        metrics["d_real_logit"] = tf.nn.compute_average_loss(tf.reshape(real_logits, [-1]),
                                                             global_batch_size=global_batch)
        metrics["d_fake_logit"] = tf.nn.compute_average_loss(tf.reshape(fake_logits, [-1]),
                                                             global_batch_size=global_batch)
        return metrics

    def _discriminator_penalties(self, real, fake, batch, global_batch, metrics):
        """WGAN-GP and R1 terms of the discriminator loss (recorded in ``metrics``)."""
        total = tf.constant(0.0)  # adding an exact 0.0 keeps runs without penalties bit-identical
        if self.loss.gradient_penalty:
            penalty = losses_lib.gradient_penalty(self.discriminator, real, fake, batch["alpha"])
            metrics["gradient_penalty"] = tf.nn.compute_average_loss(
                penalty, global_batch_size=global_batch)
            total += self.loss_config.gradient_penalty_weight * metrics["gradient_penalty"]
        if self.loss_config.r1_weight:
            metrics["r1_penalty"] = tf.nn.compute_average_loss(
                losses_lib.r1_penalty(self.discriminator, real), global_batch_size=global_batch)
            total += 0.5 * self.loss_config.r1_weight * metrics["r1_penalty"]
        return total

    def _generator_step(self, batch):
        z = batch["z_g"]
        global_batch = tf.shape(z)[0] * self.strategy.num_replicas_in_sync
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            metrics = self._generator_adversarial_loss(fake, global_batch, batch)
            extra = self.extra_generator_losses(z, fake, global_batch)
            metrics.update(extra)
            loss = (self.adversarial_weight * metrics.get("g_adv_loss", 0.0)
                    + tf.add_n([tf.constant(0.0)] + list(extra.values())))
            loss += self._regularization(self.generator)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics["g_loss"] = loss
        return metrics

    def _generator_adversarial_loss(self, fake, global_batch, batch=None):
        """``{"g_adv_loss": scalar}`` (``fake`` augmented with ``batch``'s generator-step
        parameters if a batch is given), or ``{}`` when the term has weight 0 and the
        discriminator is frozen: that inference-mode pass could change nothing, so it is skipped
        (distillation-only recovery runs no discriminator at all)."""
        if not (self.adversarial_weight or self.train_discriminator):
            return {}
        if batch is not None:
            fake = self._augment(fake, batch, "aug_g")
        fake_logits = self.discriminator(fake, training=self.train_discriminator)
        return {"g_adv_loss": tf.nn.compute_average_loss(self.loss.generator_loss(fake_logits),
                                                         global_batch_size=global_batch)}

    def _simultaneous_step(self, batch):
        """The TensorFlow DCGAN tutorial's step: both networks' gradients from one pass each.

        The generator's gradient is taken against the discriminator before its update (the
        alternating step's generator update sees the updated one), and there is no second
        generator pass: that is what makes it cheaper.
        """
        z = batch["z_d"]
        global_batch = tf.shape(z)[0] * self.strategy.num_replicas_in_sync
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(self._augment(batch["images"], batch, "aug_d"),
                                             training=True)
            fake_logits = self.discriminator(self._augment(fake, batch, "aug_d"), training=True)
            metrics = self._discriminator_loss(real_logits, fake_logits, global_batch)
            d_loss = metrics["d_adv_loss"] + self._regularization(self.discriminator)
            metrics["g_adv_loss"] = tf.nn.compute_average_loss(
                self.loss.generator_loss(fake_logits), global_batch_size=global_batch)
            extra = self.extra_generator_losses(z, fake, global_batch)
            metrics.update(extra)
            g_loss = (self.adversarial_weight * metrics["g_adv_loss"]
                      + tf.add_n([tf.constant(0.0)] + list(extra.values()))
                      + self._regularization(self.generator))
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = generator_tape.gradient(g_loss, g_vars)
        d_grads = discriminator_tape.gradient(d_loss, d_vars)
        self.generator_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.discriminator_optimizer.apply_gradients(zip(d_grads, d_vars))
        metrics["d_loss"], metrics["g_loss"] = d_loss, g_loss
        return metrics

    def extra_generator_losses(self, z, fake_images, global_batch_size):
        """Hook for subclasses: named scalar losses added to the generator's (e.g. distillation).

        Runs inside the generator's tape, per replica. Returns a dict of name -> scalar already
        reduced over ``global_batch_size`` (use ``tf.nn.compute_average_loss``).
        """
        del z, fake_images, global_batch_size
        return {}

    def _regularization(self, model):
        if not (self.loss_config.l1 or self.loss_config.l2):
            return tf.constant(0.0)
        reg = losses_lib.weight_regularization(kernel_weights(model), self.loss_config.l1,
                                               self.loss_config.l2)
        return tf.nn.scale_regularization_loss(reg)

    def _clip_discriminator(self):
        clip = self.loss_config.clip_value
        for variable in self.discriminator.trainable_variables:
            variable.assign(tf.clip_by_value(variable, -clip, clip))

