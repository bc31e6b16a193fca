"""Training throughput of GANTrainer against a plain tf.function reference loop, same model, same run.

    python experiments/benchmarks/bench_train.py --batch_sizes=64,256 --steps=20 --rounds=3

The reference is the TensorFlow DCGAN tutorial's step: one tape per network, z drawn with
tf.random.normal inside the step, BCE losses. GANTrainer is measured with its default alternating
update and with ``update="simultaneous"`` (the same one-pass step as the reference), each with the
per-step non-finite check (a host sync every step) and, for the simultaneous step, without it. Both loops train the same 28x28 DCGAN on the same
tf.data pipeline; rounds are interleaved so machine noise hits both alike, and medians are reported.
The data pipeline is also timed alone, to show it is not the bottleneck.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tfgan_opt import DataConfig, LossConfig, ModelConfig, TrainConfig, data, models  # noqa: E402
from tfgan_opt.core.compat import keras  # noqa: E402
from tfgan_opt.training.trainer import GANTrainer  # noqa: E402

MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist-t10k",
                     "t10k-images-idx3-ubyte.gz")
flags.DEFINE_string("dataset", f"idx:{MNIST}" if os.path.exists(MNIST) else "digits", "Source.")
flags.DEFINE_list("batch_sizes", ["64", "256"], "Batch sizes to measure.")
flags.DEFINE_integer("steps", 20, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_integer("width", 64, "DCGAN width (64: the tutorial's size).")
FLAGS = flags.FLAGS
TRAINER_VARIANTS = {
    "alternating": {"check_numerics": True},
    "simultaneous": {"update": "simultaneous", "check_numerics": True},
    "simultaneous, no numerics check": {"update": "simultaneous", "check_numerics": False},
}


def reference_step_fn(generator, discriminator, batch_size, latent_dim):
    """The TensorFlow DCGAN tutorial's train step, on the same networks."""
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)

    @tf.function
    def step(images):
        z = tf.random.normal([batch_size, latent_dim])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            real_logits = discriminator(images, training=True)
            fake_logits = discriminator(fake, training=True)
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
            d_loss = (bce(tf.ones_like(real_logits), real_logits)
                      + bce(tf.zeros_like(fake_logits), fake_logits))
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                  generator.trainable_variables))
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                  discriminator.trainable_variables))
        return g_loss, d_loss

    return step


def time_loop(run_one, steps):
    start = time.perf_counter()
    for _ in range(steps):
        out = run_one()
    tf.nest.map_structure(lambda t: t.numpy(), out)  # wait for the last step
    return time.perf_counter() - start


def measure(batch_size):
    data_config = DataConfig(source=FLAGS.dataset, image_size=28, batch_size=batch_size)
    model_config = ModelConfig(image_size=28, width=FLAGS.width, discriminator_width=FLAGS.width)
    dataset = data.make_dataset(data_config)

    trainers = {name: GANTrainer(models.build_generator(model_config, 0),
                                 models.build_discriminator(model_config, 0), LossConfig(),
                                 TrainConfig(steps=10**9, **kwargs))
                for name, kwargs in TRAINER_VARIANTS.items()}
    iterators = {name: trainer.iterate(dataset) for name, trainer in trainers.items()}
    g, d = models.build_generator(model_config, 0), models.build_discriminator(model_config, 0)
    ref_step = reference_step_fn(g, d, batch_size, model_config.latent_dim)
    ref_iterator = iter(dataset)
    data_iterator = iter(dataset)

    loops = {
        **{name: (lambda t=trainer, i=iterators[name]: t.train_step(i))
           for name, trainer in trainers.items()},
        "reference tf.function": lambda: ref_step(next(ref_iterator)[0]),
        "data pipeline alone": lambda: next(data_iterator)[0],
    }
    for run_one in loops.values():  # warm-up: tracing, caches, the shuffle buffer
        time_loop(run_one, 3)
    seconds = {name: [] for name in loops}
    for _ in range(FLAGS.rounds):
        for name, run_one in loops.items():
            seconds[name].append(time_loop(run_one, FLAGS.steps))
    return {name: batch_size * FLAGS.steps / np.median(s) for name, s in seconds.items()}


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    print(f"dataset {FLAGS.dataset}, 28x28 DCGAN width {FLAGS.width}, {FLAGS.steps} steps x "
          f"{FLAGS.rounds} interleaved rounds, median images/s")
    names = list(TRAINER_VARIANTS)
    print("| batch | reference img/s | " + " | ".join(f"{n} img/s (ratio)" for n in names)
          + " | data pipeline img/s |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for batch_size in map(int, FLAGS.batch_sizes):
        r = measure(batch_size)
        ref = r["reference tf.function"]
        cells = " | ".join(f"{r[n]:.0f} ({r[n] / ref:.2f}x)" for n in names)
        print(f"| {batch_size} | {ref:.0f} | {cells} | {r['data pipeline alone']:.0f} |",
              flush=True)


if __name__ == "__main__":
    app.run(main)
