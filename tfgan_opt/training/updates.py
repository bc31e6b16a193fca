"""The math of one update of `GANTrainer`, per replica: the discriminator, generator and
simultaneous steps, their penalties (WGAN-GP, R1) and regularization, and augmentation.

Losses are per-example and reduced with ``tf.nn.compute_average_loss`` over the GLOBAL batch, so N
replicas compute the same update as one device. Augmentation (DiffAugment) transforms what the
discriminator sees, real and fake alike, in both updates, with parameters drawn in the input
pipeline (`tfgan_opt.training.noise`).

A conditional GAN (the batch has ``labels``, ``y_d``, ``y_g``) feeds the generator (z, fake labels)
and the discriminator (images, labels): real images with their labels, fakes with the labels they
were generated for. With an AC-GAN discriminator, the cross-entropy of its class logits (real and
fake for the discriminator, fake for the generator) is added, weighted by ``acgan_weight``.
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

    def _generator_inputs(self, batch, update):
        """What the generator takes in ``update`` ``d`` or ``g``: z, or (z, fake labels)."""
        z = batch[f"z_{update}"]
        return (z, batch[f"y_{update}"]) if f"y_{update}" in batch else z

    def _critic(self, images, labels, training):
        """``(logits [B, 1], AC-GAN class logits [B, K] or None)``; labels None: unconditional."""
        if labels is None:
            return self.discriminator(images, training=training), None
        if self.discriminator.has_classifier:
            return self.discriminator.logits_and_classes((images, labels), training=training)
        return self.discriminator((images, labels), training=training), None

    def _image_critic(self, labels):
        """The discriminator as a function of the images alone (for the gradient penalties)."""
        if labels is None:
            return self.discriminator
        return lambda images, training=False: self.discriminator((images, labels),
                                                                 training=training)

    def _class_loss(self, labels, class_logits, global_batch):
        """AC-GAN cross-entropy of class logits, reduced over the global batch."""
        return tf.nn.compute_average_loss(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, class_logits),
            global_batch_size=global_batch)

    def _discriminator_step(self, batch, with_r1=True):
        real = self._augment(batch["images"], batch, "aug_d")
        global_batch = tf.shape(real)[0] * self.strategy.num_replicas_in_sync
        fake = self._augment(self.generator(self._generator_inputs(batch, "d"), training=True),
                             batch, "aug_d")
        labels, fake_labels = batch.get("labels"), batch.get("y_d")
        with tf.GradientTape() as tape:
            real_logits, real_classes = self._critic(real, labels, training=True)
            fake_logits, fake_classes = self._critic(fake, fake_labels, training=True)
            metrics = self._discriminator_loss(real_logits, fake_logits, global_batch)
            loss = metrics["d_adv_loss"]
            loss += self._discriminator_penalties(real, fake, batch, global_batch, metrics,
                                                  with_r1)
            loss += self._regularization(self.discriminator)
            if real_classes is not None:
                metrics["d_class_loss"] = self._acgan_weight() * (
                    self._class_loss(labels, real_classes, global_batch)
                    + self._class_loss(fake_labels, fake_classes, global_batch))
                loss += metrics["d_class_loss"]
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

    def _discriminator_penalties(self, real, fake, batch, global_batch, metrics, with_r1=True):
        """WGAN-GP and R1 terms of the discriminator loss (recorded in ``metrics``).

        ``with_r1`` False skips R1 on this step (lazy R1: it runs on every ``r1_every``-th step,
        with ``r1_every`` times its weight).
        """
        total = tf.constant(0.0)  # adding an exact 0.0 keeps runs without penalties bit-identical
        # Conditional: both penalties use the real labels (interpolates included).
        critic = self._image_critic(batch.get("labels"))
        if self.loss.gradient_penalty:
            penalty = losses_lib.gradient_penalty(critic, real, fake, batch["alpha"])
            metrics["gradient_penalty"] = tf.nn.compute_average_loss(
                penalty, global_batch_size=global_batch)
            total += self.loss_config.gradient_penalty_weight * metrics["gradient_penalty"]
        if self.loss_config.r1_weight and with_r1:
            metrics["r1_penalty"] = tf.nn.compute_average_loss(
                losses_lib.r1_penalty(critic, real), global_batch_size=global_batch)
            weight = self.loss_config.r1_weight * self.loss_config.r1_every
            total += 0.5 * weight * metrics["r1_penalty"]
        return total

    def _generator_step(self, batch):
        z = self._generator_inputs(batch, "g")
        global_batch = tf.shape(batch["z_g"])[0] * self.strategy.num_replicas_in_sync
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            metrics, fake_classes = self._generator_adversarial_loss(fake, global_batch, batch,
                                                                     batch.get("y_g"))
            extra = self.extra_generator_losses(z, fake, global_batch)
            extra.update(self._mode_seeking(z, fake))
            if fake_classes is not None:
                extra["g_class_loss"] = self._acgan_weight() * self._class_loss(
                    batch["y_g"], fake_classes, global_batch)
            metrics.update(extra)
            loss = (self.adversarial_weight * metrics.get("g_adv_loss", 0.0)
                    + tf.add_n([tf.constant(0.0)] + list(extra.values())))
            loss += self._regularization(self.generator)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        metrics["g_loss"] = loss
        return metrics

    def _generator_adversarial_loss(self, fake, global_batch, batch=None, labels=None):
        """``({"g_adv_loss": scalar}, AC-GAN class logits or None)`` (``fake`` augmented with
        ``batch``'s generator-step parameters if a batch is given; ``labels``: the classes a
        conditional generator drew), or ``({}, None)`` when the term has weight 0 and the
        discriminator is frozen: that inference-mode pass could change nothing, so it is skipped
        (distillation-only recovery runs no discriminator at all)."""
        if not (self.adversarial_weight or self.train_discriminator):
            return {}, None
        if batch is not None:
            fake = self._augment(fake, batch, "aug_g")
        fake_logits, fake_classes = self._critic(fake, labels, training=self.train_discriminator)
        loss = tf.nn.compute_average_loss(self.loss.generator_loss(fake_logits),
                                          global_batch_size=global_batch)
        return {"g_adv_loss": loss}, fake_classes

    def _simultaneous_step(self, batch):
        """The TensorFlow DCGAN tutorial's step: both networks' gradients from one pass each.

        The generator's gradient is taken against the discriminator before its update (the
        alternating step's generator update sees the updated one), and there is no second
        generator pass: that is what makes it cheaper.
        """
        z = self._generator_inputs(batch, "d")
        labels, fake_labels = batch.get("labels"), batch.get("y_d")
        global_batch = tf.shape(batch["z_d"])[0] * self.strategy.num_replicas_in_sync
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = self.generator(z, training=True)
            real_logits, real_classes = self._critic(
                self._augment(batch["images"], batch, "aug_d"), labels, training=True)
            fake_logits, fake_classes = self._critic(self._augment(fake, batch, "aug_d"),
                                                     fake_labels, training=True)
            metrics = self._discriminator_loss(real_logits, fake_logits, global_batch)
            d_loss = metrics["d_adv_loss"] + self._regularization(self.discriminator)
            metrics["g_adv_loss"] = tf.nn.compute_average_loss(
                self.loss.generator_loss(fake_logits), global_batch_size=global_batch)
            extra = self.extra_generator_losses(z, fake, global_batch)
            extra.update(self._mode_seeking(z, fake))
            if real_classes is not None:
                metrics["d_class_loss"] = self._acgan_weight() * (
                    self._class_loss(labels, real_classes, global_batch)
                    + self._class_loss(fake_labels, fake_classes, global_batch))
                d_loss += metrics["d_class_loss"]
                extra["g_class_loss"] = self._acgan_weight() * self._class_loss(
                    fake_labels, fake_classes, global_batch)
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

    def _mode_seeking(self, z, fake):
        """``{"mode_seeking_loss": scalar}`` when `LossConfig.mode_seeking_weight` is on, else {}.

        The noise pipeline gave rows 2i and 2i + 1 the same class (``paired_labels``), so each
        pair differs in z only. The per-replica term is divided by the replica count: the summed
        gradients are then those of its mean over the replicas.
        """
        weight = self.loss_config.mode_seeking_weight
        if not weight:
            return {}
        latents = z[0] if isinstance(z, (tuple, list)) else z
        return {"mode_seeking_loss": weight * losses_lib.mode_seeking_loss(latents, fake)
                / self.strategy.num_replicas_in_sync}

    def _acgan_weight(self):
        return self.acgan_weight

    def extra_generator_losses(self, z, fake_images, global_batch_size):
        """Hook for subclasses: named scalar losses added to the generator's (e.g. distillation).

        Runs inside the generator's tape, per replica. ``z`` is what the generator took: z, or a
        conditional generator's (z, labels). Returns a dict of name -> scalar already
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

