"""The randomness of every training step, drawn in the input pipeline from stateless seeds.

Each element (one global batch) gets z for the discriminator and generator updates, the WGAN-GP
interpolation weight and, with augmentation, the DiffAugment parameters, all from seeds derived
from (seed, element index). A run is then reproducible, a resumed run continues the noise stream,
and under ``tf.distribute`` each replica gets exactly its slice of what one device would draw.
"""

import tensorflow as tf

from tfgan_opt.training import augment as augment_lib

# Folded into each element's seed to draw augmentation parameters from their own stream.
_AUGMENT_STREAM = 18
# Folded into each element's seed to draw a conditional GAN's fake labels from their own stream.
_LABEL_STREAM = 15


def add_step_noise(dataset, start_step, *, seed, latent_dim, n_critic, augment=False,
                   num_classes=0, paired_labels=False):
    """Maps (images, labels) batches to dicts of images plus the step's noise.

    Args:
      dataset: ``tf.data.Dataset`` of (images [B, H, W, C], labels) batches.
      start_step: the trainer step the first element belongs to (a resumed run continues).
      seed: the run's seed.
      latent_dim: size of z.
      n_critic: elements (batches) consumed per trainer step.
      augment: also draw ``aug_d`` and ``aug_g``, float32 [B, augment.NUM_PARAMS]: the
        transforms of the discriminator update (real and fake alike) and of the generator update.
      num_classes: a conditional GAN's class count: also ``labels`` (the real images' labels),
        ``y_d`` and ``y_g``, int32 [B], uniform random class labels for the fakes.
      paired_labels: rows 2i and 2i + 1 of ``y_d`` and ``y_g`` get the same label (the pairs of
        the mode-seeking term, `losses.mode_seeking_loss`; they stay on one replica when each
        replica's batch is even).

    Returns:
      A dataset of dicts: ``images``, ``z_d``, ``z_g`` [B, latent_dim], ``alpha`` [B] (and the
      augmentation parameters and labels).
    """
    def with_noise(index, batch):
        images = batch[0]
        size = tf.shape(images)[0]
        element_seed = tf.stack([tf.constant(seed, tf.int64), index])
        seeds = tf.random.experimental.stateless_split(element_seed, 3)
        noise = {"images": images,
                 "z_d": tf.random.stateless_normal([size, latent_dim], seed=seeds[0]),
                 "z_g": tf.random.stateless_normal([size, latent_dim], seed=seeds[1]),
                 "alpha": tf.random.stateless_uniform([size], seed=seeds[2])}
        if augment:
            # A separate stream, so that switching augmentation on leaves z and alpha as they
            # were (and off stays bit-identical to runs made before augmentation existed).
            aug_seeds = tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(element_seed, _AUGMENT_STREAM), 2)
            noise["aug_d"] = augment_lib.draw_params(size, aug_seeds[0])
            noise["aug_g"] = augment_lib.draw_params(size, aug_seeds[1])
        if num_classes:
            label_seeds = tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(element_seed, _LABEL_STREAM), 2)
            noise["labels"] = tf.cast(batch[1], tf.int32)
            for i, key in enumerate(("y_d", "y_g")):
                noise[key] = tf.random.stateless_uniform([size], seed=label_seeds[i], minval=0,
                                                         maxval=num_classes, dtype=tf.int32)
                if paired_labels:
                    noise[key] = tf.gather(noise[key], tf.range(size) // 2 * 2)
        return noise

    return dataset.enumerate(start=start_step * n_critic).map(
        with_noise, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
            tf.data.AUTOTUNE)
