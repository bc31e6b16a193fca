"""Training image-to-image generators: L1 (with optional distillation) and L1 + adversarial.

ESRGAN's recipe in two phases (Wang et al. 2018): `train_l1` pretrains a PSNR-oriented
generator; `train_adversarial` fine-tunes a copy of it against a PatchGAN with L1 plus the
non-saturating adversarial loss, trading some PSNR for realism. The same `train_l1` also runs the
recovery fine-tunes of compression (pruned or QAT students, optionally distilled from the dense
teacher) with tfmot pruning callbacks.

Both loops are plain ``tf.function`` GradientTape steps over a paired dataset
(`tfgan_opt.data.paired.make_paired_dataset`), with a cosine learning-rate decay, a NaN check and
an optional wall-clock cap.
"""

import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt import losses
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import NonFiniteError


def _optimizer(lr, steps):
    schedule = keras.optimizers.schedules.CosineDecay(lr, max(1, steps), alpha=0.05)
    return keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.99)


def _check_finite(values, phase, step):
    for name, value in values.items():
        if not np.isfinite(value):
            raise NonFiniteError(f"{phase}: {name} is {value} at step {step}; lower the learning "
                                f"rate")


def _log(phase, step, steps, start, values):
    rate = step / max(time.time() - start, 1e-9)
    logging.info("%s step %d/%d (%.1f steps/s): %s", phase, step, steps, rate,
                 ", ".join(f"{k} {v:.4f}" for k, v in values.items()))


def _loop(phase, step_fn, iterator, steps, max_seconds, log_every, callbacks=()):
    """Runs ``step_fn(low, high)`` up to ``steps`` times; returns (steps done, last losses)."""
    for callback in callbacks:
        callback.on_train_begin()
    start, values, done = time.time(), {}, 0
    for done in range(1, steps + 1):
        for callback in callbacks:
            callback.on_train_batch_begin(done - 1)
        low, high = next(iterator)
        values = {k: float(v) for k, v in step_fn(low, high).items()}
        _check_finite(values, phase, done)
        if done % log_every == 0 or done == steps:
            _log(phase, done, steps, start, values)
        if max_seconds is not None and time.time() - start > max_seconds:
            logging.info("%s stopped by its %.0f s budget after %d of %d steps.", phase,
                         max_seconds, done, steps)
            break
    for callback in callbacks:
        callback.on_epoch_end(0)
    return done, values


def train_l1(generator, dataset, steps, lr, *, teacher=None, distill_weight=0.0,
             callbacks=(), max_seconds=None, log_every=100, phase="l1"):
    """Trains ``generator`` in place on L1 to the clean images (plus L1 to a teacher).

    Args:
      generator: `ImageGenerator` (plain, pruning-wrapped or QAT).
      dataset: (degraded [B, h, w, 3], clean [B, s*h, s*w, 3]) batches, endless.
      steps: optimizer steps.
      lr: initial Adam learning rate (cosine decay to 5 %).
      teacher: optional `ImageGenerator` whose outputs the student also matches.
      distill_weight: weight of that L1.
      callbacks: tfmot pruning-step callbacks (`compress.prune.pruning_callbacks`).
      max_seconds: stop after this much wall-clock time.
      log_every: steps between progress lines.
      phase: name in the log lines.

    Returns:
      ``{"steps": steps done, "seconds": float, **last losses}``.

    Raises:
      NonFiniteError: a loss became NaN or infinite.
    """
    optimizer = _optimizer(lr, steps)

    @tf.function
    def step(low, high):
        with tf.GradientTape() as tape:
            output = generator(low, training=True)
            loss = tf.reduce_mean(tf.abs(output - high))
            total = loss
            if teacher is not None and distill_weight:
                target = teacher(low, training=False)
                total = total + distill_weight * tf.reduce_mean(tf.abs(output - target))
        variables = generator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return {"l1": loss, "total": total}

    start = time.time()
    done, values = _loop(phase, step, iter(dataset), steps, max_seconds, log_every, callbacks)
    return {"steps": done, "seconds": time.time() - start, **values}


def train_adversarial(generator, discriminator, dataset, steps, lr, adversarial_weight, *,
                      max_seconds=None, log_every=100):
    """Fine-tunes ``generator`` in place with L1 + adversarial loss against a PatchGAN.

    The discriminator (updated first each step) sees clean and restored images; its
    non-saturating loss and the generator's are averaged over patches.

    Returns:
      ``{"steps", "seconds", "l1", "adversarial", "discriminator"}`` (last step's losses).
    """
    g_optimizer = _optimizer(lr, steps)
    d_optimizer = keras.optimizers.Adam(lr, beta_1=0.9, beta_2=0.99)

    @tf.function
    def step(low, high):
        fake = generator(low, training=True)
        with tf.GradientTape() as tape:
            d_loss = tf.reduce_mean(losses.non_saturating_discriminator_loss(
                discriminator(high, training=True), discriminator(fake, training=True)))
        d_vars = discriminator.trainable_variables
        d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        with tf.GradientTape() as tape:
            fake = generator(low, training=True)
            l1 = tf.reduce_mean(tf.abs(fake - high))
            adversarial = tf.reduce_mean(losses.non_saturating_generator_loss(
                discriminator(fake, training=True)))
            total = l1 + adversarial_weight * adversarial
        g_vars = generator.trainable_variables
        g_optimizer.apply_gradients(zip(tape.gradient(total, g_vars), g_vars))
        return {"l1": l1, "adversarial": adversarial, "discriminator": d_loss}

    start = time.time()
    done, values = _loop("gan", step, iter(dataset), steps, max_seconds, log_every)
    return {"steps": done, "seconds": time.time() - start, **values}


def copy_generator(generator):
    """An independent copy (same class, architecture and weights) of a plain generator."""
    network = keras.models.clone_model(generator.network)
    network.set_weights(generator.network.get_weights())
    return generator.with_network(network)
