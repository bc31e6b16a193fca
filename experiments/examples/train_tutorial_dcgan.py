"""A user's script: the TensorFlow DCGAN tutorial, trained on MNIST digits, saved as .keras.

It stands for a model trained OUTSIDE tfgan_opt (it imports nothing from the package): plain
tf_keras Sequential models and a GradientTape loop, as in
https://www.tensorflow.org/tutorials/generative/dcgan. Then compress it with

    python experiments/compress.py --generator=OUT/generator.keras \
        --discriminator=OUT/discriminator.keras --dataset=idx:... --run_dir=...

Usage:
    python experiments/examples/train_tutorial_dcgan.py --out=runs/tutorial \
        --images=../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz --steps=1100 --batch_size=64
"""

import argparse
import gzip
import os
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

LATENT_DIM = 100


def make_generator_model():
    return keras.Sequential([
        keras.layers.Dense(7 * 7 * 256, use_bias=False, input_shape=(LATENT_DIM,)),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(),
        keras.layers.Reshape((7, 7, 256)),
        keras.layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                                     activation="tanh"),
    ])


def make_discriminator_model():
    return keras.Sequential([
        keras.layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same", input_shape=[28, 28, 1]),
        keras.layers.LeakyReLU(),
        keras.layers.Dropout(0.3),
        keras.layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
        keras.layers.LeakyReLU(),
        keras.layers.Dropout(0.3),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    ])


def read_idx_images(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    # The tutorial's Adam(1e-4); the DCGAN paper's 2e-4 with beta_1 = 0.5 learns digits sooner.
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--beta_1", type=float, default=0.9)
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    images = (read_idx_images(args.images).astype("float32") - 127.5) / 127.5
    dataset = (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images)).repeat()
               .batch(args.batch_size, drop_remainder=True).prefetch(2))
    generator, discriminator = make_generator_model(), make_discriminator_model()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(args.learning_rate, beta_1=args.beta_1)
    discriminator_optimizer = keras.optimizers.Adam(args.learning_rate, beta_1=args.beta_1)

    @tf.function
    def train_step(real):
        noise = tf.random.normal([args.batch_size, LATENT_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            fake = generator(noise, training=True)
            real_output = discriminator(real, training=True)
            fake_output = discriminator(fake, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        generator_optimizer.apply_gradients(zip(
            gen_tape.gradient(gen_loss, generator.trainable_variables),
            generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(
            disc_tape.gradient(disc_loss, discriminator.trainable_variables),
            discriminator.trainable_variables))
        return gen_loss, disc_loss

    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    for step, real in enumerate(dataset.take(args.steps), start=1):
        gen_loss, disc_loss = train_step(real)
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: gen {float(gen_loss):.3f} disc {float(disc_loss):.3f} "
                  f"({time.time() - start:.0f} s)", flush=True)
        if step % 100 == 0 or step == args.steps:
            generator.save(os.path.join(args.out, "generator.keras"))
            discriminator.save(os.path.join(args.out, "discriminator.keras"))


if __name__ == "__main__":
    main()
