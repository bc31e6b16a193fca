"""The adversarial trainer: a `tf.GradientTape` loop inside `tf.function`, on `tf.data`.

One training step is ``n_critic`` discriminator updates followed by one generator update
(``update="alternating"``), or one pass whose gradients update both networks at once
(``update="simultaneous"``, the TensorFlow DCGAN tutorial's step). All the step's randomness (z for
the discriminator and generator updates, the WGAN-GP interpolation weight, the augmentation
parameters) is drawn inside the input pipeline from stateless seeds derived from (seed, element index). That
makes a run reproducible, lets a resumed run continue the noise stream, and means that under
``tf.distribute`` each replica gets exactly its slice of the noise one device would have drawn.

Losses are per-example and reduced with ``tf.nn.compute_average_loss`` over the GLOBAL batch, and
gradients are summed across replicas by the optimizer, so N replicas compute the same update as one
device on the same global batch. The update math lives in `updates`, the noise in `noise`, the
generator's moving average in `ema`.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt import losses as losses_lib
from tfgan_opt.core.artifacts import sweep_temporaries
from tfgan_opt.core.compat import keras
from tfgan_opt.core.pipeline_config import check_update
from tfgan_opt.core.errors import NonFiniteError
from tfgan_opt.core.images import image_grid, save_image_grid
from tfgan_opt.training import checkpointing, distribute, ema, interrupt, noise, updates

SAMPLE_GRID_SIZE = 64


class GANTrainer(updates.UpdateRules):
    """Trains a `Generator` against a `Discriminator`.

    Typical use::

        trainer = GANTrainer(generator, discriminator, LossConfig(), TrainConfig(steps=2000))
        history = trainer.train(make_dataset(data_config), run_dir="runs/mnist")

    Rerunning ``train`` on the same ``run_dir`` resumes from its newest checkpoint that restores.

    Args:
      generator, discriminator: `Generator` (maybe tfmot-wrapped already), `Discriminator`.
      loss_config, train_config: `LossConfig`, `TrainConfig`.
      strategy: a ``tf.distribute.Strategy``; the models must have been built under its scope.
        Default: the default (single-device) strategy.
      callbacks: keras callbacks driven by hand for the generator/discriminator networks (e.g.
        tfmot's ``UpdatePruningStep``, already ``set_model``'d): ``on_train_begin`` once,
        ``on_train_batch_begin(step)`` before every step, ``on_epoch_end(step)`` at every
        checkpoint and at the end (that is where tfmot applies its masks).
      is_chief: whether this worker writes checkpoints, summaries and samples into the run
        directory; other workers save their checkpoints into a temporary directory they delete
        (see `distribute.worker_write_dir`). None: `distribute.is_chief` of the strategy.
      adversarial_weight: scale of the generator's adversarial loss (subclasses that add
        distillation losses through `extra_generator_losses` weigh the two).
      train_discriminator: False freezes the discriminator: no discriminator updates, and the
        generator step calls it in inference mode.
      acgan_weight: weight of the AC-GAN class cross-entropy when the discriminator has a class
        output (`ModelConfig.acgan_weight`).
    """

    def __init__(self, generator, discriminator, loss_config, train_config, strategy=None,
                 callbacks=(), is_chief=None, adversarial_weight=1.0, train_discriminator=True,
                 acgan_weight=1.0):
        self.generator = generator
        self.discriminator = discriminator
        self.loss_config = loss_config
        self.config = train_config
        self.loss = losses_lib.get_loss(loss_config.name)
        check_update(loss_config, train_config)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.callbacks = list(callbacks)
        self.is_chief = distribute.is_chief(self.strategy) if is_chief is None else is_chief
        self.adversarial_weight = adversarial_weight
        self.train_discriminator = train_discriminator
        self.acgan_weight = acgan_weight
        with self.strategy.scope():
            self.generator_optimizer = keras.optimizers.Adam(
                train_config.generator_lr, beta_1=train_config.beta_1, beta_2=train_config.beta_2)
            self.discriminator_optimizer = keras.optimizers.Adam(
                train_config.discriminator_lr, beta_1=train_config.beta_1,
                beta_2=train_config.beta_2)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.ema_network = (ema.make_ema_network(generator.network)
                                if train_config.ema_decay else None)
            # Creating the slot variables now keeps tf.function from tracing the step twice.
            self.generator_optimizer.build(generator.trainable_variables)
            self.discriminator_optimizer.build(discriminator.trainable_variables)
        self._step_fn = None

    # ----------------------------------------------------------------------------------------
    # Public API

    def train(self, dataset, run_dir=None):
        """Trains until ``config.steps`` and returns the history of logged metrics.

        Args:
          dataset: ``tf.data.Dataset`` yielding (images, labels) batches of the GLOBAL batch size,
            images float32 [B, H, W, C] in [-1, 1], repeated (infinite).
          run_dir: directory for checkpoints, TensorBoard logs and sample grids; None trains in
            memory only (tests).

        Returns:
          A list of dicts, one per logged step: ``step``, ``d_loss``, ``g_loss``, ... floats.

        Raises:
          NonFiniteError: a loss became NaN or Inf (checked every step), or a weight did (checked
            at every checkpoint, before saving); the last good checkpoint is kept.
          Interrupted: SIGINT or SIGTERM arrived; a checkpoint at the current step was saved.
          RunDirError: the checkpoints are past ``config.steps``, or none of them restores.
        """
        manager, writer = self._open_run_dir(run_dir)
        start = checkpointing.check_resume_step(int(self.step.numpy()), self.config.steps, run_dir)
        if start == self.config.steps:
            return []
        iterator = self.iterate(dataset, start)
        for callback in self.callbacks:
            callback.on_train_begin()
        history, timer = [], checkpointing.Throughput(start, self.config.steps)
        with interrupt.SignalCatcher() as signals:
            for step in range(start, self.config.steps):
                for callback in self.callbacks:
                    callback.on_train_batch_begin(step)
                metrics = self._run_step(iterator, step, manager)
                done = step + 1
                if done % self.config.log_every == 0 or done == self.config.steps:
                    history.append(self._log(done, metrics, timer, writer))
                saved = done % self.config.checkpoint_every == 0 or done == self.config.steps
                if saved:
                    self._checkpoint(done, manager, writer, run_dir)
                if signals.received:
                    signals.stop(done, None if saved or manager is None else
                                 lambda: self._checkpoint(done, manager, writer, run_dir))
        return history

    def iterate(self, dataset, start_step=0):
        """An iterator over ``dataset`` with the step noise added, distributed over the replicas."""
        return iter(self._distribute(self._add_noise(dataset, start_step)))

    def train_step(self, iterator):
        """Runs one training step (n_critic D updates, one G update); returns reduced metrics."""
        return self._run_step(iterator, int(self.step.numpy()), None)

    def final_generator(self):
        """The generator to evaluate and export: the EMA copy if enabled, else the trained one."""
        if self.ema_network is None:
            return self.generator
        return self.generator.with_network(self.ema_network)

    def restore(self, run_dir):
        """Restores the latest checkpoint of ``run_dir``; returns its step (0 if none)."""
        self._open_run_dir(run_dir, create_writer=False)
        return int(self.step.numpy())

    # ----------------------------------------------------------------------------------------
    # The step

    def _add_noise(self, dataset, start_step):
        """(images, labels) batches -> dicts with the step's noise (see `noise.add_step_noise`)."""
        return noise.add_step_noise(dataset, start_step, seed=self.config.seed,
                                    latent_dim=self.generator.latent_dim,
                                    n_critic=self.config.n_critic,
                                    augment=bool(self.config.augment),
                                    num_classes=self.generator.num_classes,
                                    paired_labels=bool(self.loss_config.mode_seeking_weight))

    def _distribute(self, dataset):
        # Every worker builds the whole global batch (and its noise) and keeps its replicas' slices:
        # the default AUTO policy would shard a file-based source (TFDS) by file, so workers would
        # count elements separately and draw the same noise.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        # For the default strategy this returns the dataset as it is.
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def _build_step_fn(self):
        n_critic = self.config.n_critic
        strategy = self.strategy

        def reduce(per_replica):
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}

        @tf.function
        def step_fn(iterator, with_r1):  # with_r1: a Python bool, one trace for each value
            if self.config.update == "simultaneous" and self.train_discriminator:
                metrics = reduce(strategy.run(self._simultaneous_step, args=(next(iterator),)))
                return self._finish_step(metrics)
            d_metrics = {}
            for _ in range(n_critic):  # unrolled: n_critic is a small Python int
                batch = next(iterator)
                if not self.train_discriminator:
                    continue  # still consume n_critic batches: resumed runs index noise by step
                d_metrics = reduce(strategy.run(self._discriminator_step, args=(batch, with_r1)))
                if self.loss.clip_weights:
                    self._clip_discriminator()
            g_metrics = reduce(strategy.run(self._generator_step, args=(batch,)))
            return self._finish_step({**d_metrics, **g_metrics})

        return step_fn

    def _finish_step(self, metrics):
        """EMA update, step count and the finiteness flag shared by both kinds of step."""
        if self.ema_network is not None:
            ema.update_ema(self.ema_network, self.generator.network, self.step,
                           self.config.ema_decay)
        self.step.assign_add(1)
        if self.config.check_numerics:
            metrics["all_finite"] = tf.reduce_all(
                [tf.reduce_all(tf.math.is_finite(v)) for v in metrics.values()])
        return metrics

    def _run_step(self, iterator, step, manager):
        if self._step_fn is None:
            self._step_fn = self._build_step_fn()
        # Lazy R1 (`LossConfig.r1_every`): the penalty's passes run on every k-th step only.
        with_r1 = step % self.loss_config.r1_every == 0 or not self.loss_config.r1_weight
        metrics = self._step_fn(iterator, with_r1)
        if self.config.check_numerics and not bool(metrics.pop("all_finite")):
            bad = sorted(k for k, v in metrics.items() if not np.all(np.isfinite(v.numpy())))
            kept = manager.latest_checkpoint if manager else None
            raise NonFiniteError(
                f"non-finite {', '.join(bad)} at step {step + 1}; training stopped"
                + (f", last good checkpoint kept: {kept}" if kept else "")
                + " (try a lower learning rate, another loss, or --check_numerics=false to debug)")
        return metrics

    # ----------------------------------------------------------------------------------------
    # Run directory: checkpoints, summaries, samples

    def _checkpoint_object(self):
        parts = {"generator": self.generator.network, "discriminator": self.discriminator.network,
                 "generator_optimizer": self.generator_optimizer,
                 "discriminator_optimizer": self.discriminator_optimizer, "step": self.step}
        if self.ema_network is not None:
            parts["ema_generator"] = self.ema_network
        return tf.train.Checkpoint(**parts)

    def _open_run_dir(self, run_dir, create_writer=True):
        if run_dir is None:
            return None, None
        if self.is_chief:
            # The chief owns the run directory apart from the non-chiefs' temporary folders,
            # which they may be writing to already.
            sweep_temporaries(run_dir, skip=(distribute.WORKER_TEMP_PREFIX,))
        # Every worker restores the chief's latest checkpoint, so all resume at the same step; only
        # the chief saves through this manager (see `checkpointing.save`).
        manager = checkpointing.restore_latest(self._checkpoint_object(),
                                               os.path.join(run_dir, "checkpoints"),
                                               self.config.keep_checkpoints)
        if manager.latest_checkpoint:
            logging.info("Resumed from %s (step %d).", manager.latest_checkpoint,
                         int(self.step.numpy()))
        writer = None
        if create_writer and self.is_chief:
            writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs"))
        return manager, writer

    def _log(self, step, metrics, timer, writer):
        values = {k: float(v.numpy()) for k, v in metrics.items()}
        rate, eta = timer.update(step)
        logging.info("step %d/%d  %s  %.1f steps/s  ETA %s", step, self.config.steps,
                     checkpointing.progress_columns(values), rate, checkpointing.format_seconds(eta))
        if writer is not None:
            with writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)
                tf.summary.scalar("steps_per_second", rate)
        return {"step": step, **values, "steps_per_second": rate}

    def sample_grid(self, num=SAMPLE_GRID_SIZE, seed=None):
        """Images of the final generator for a fixed set of latents: float32 [num, H, W, C]."""
        seed = self.config.seed if seed is None else seed
        return self.final_generator().generate(num, seed=seed)

    def _checkpoint(self, step, manager, writer, run_dir):
        for callback in self.callbacks:
            with self.strategy.scope():
                callback.on_epoch_end(step)
        if self.config.check_numerics:
            # After the callbacks (tfmot applies its masks there) and before saving, so a
            # checkpoint on disk never holds a NaN/Inf that the loss check has not seen yet
            # (the last update before a checkpoint only shows in the next step's loss).
            checkpointing.check_weights_finite(self._checkpointed_variables(), step,
                                               manager.latest_checkpoint if manager else None)
        if manager is None:
            return
        # Drawing samples reads the batch-norm moving statistics, an all-reduce across workers
        # under MultiWorkerMirroredStrategy: every worker draws them, only the chief writes them.
        # The grid is written before the checkpoint: a kill between the two leaves a grid whose
        # step is redone (and rewritten) on resume, never a checkpoint without one.
        samples = self.sample_grid()
        if self.is_chief:
            save_image_grid(os.path.join(run_dir, "samples", f"step_{step:06d}.png"), samples,
                            scale=2)
            if writer is not None:
                with writer.as_default(step=step):
                    tf.summary.image("samples", image_grid(samples)[None], max_outputs=1)
                writer.flush()
        self._save(manager, step)

    def _checkpointed_variables(self):
        """(network name, float variables) of everything a checkpoint saves."""
        groups = [("generator", self.generator.network.weights),
                  ("discriminator", self.discriminator.network.weights),
                  ("generator optimizer", self.generator_optimizer.variables()),
                  ("discriminator optimizer", self.discriminator_optimizer.variables())]
        if self.ema_network is not None:
            groups.append(("EMA generator", self.ema_network.weights))
        return [(name, [v for v in variables if v.dtype.is_floating])
                for name, variables in groups]

    def _save(self, manager, step):
        checkpointing.save(manager, step, self.strategy, self.is_chief)
