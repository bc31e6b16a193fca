"""Step time of GANTrainer on 1 replica (default strategy) vs N mirrored replicas, same batch.

    python experiments/benchmarks/bench_distribute.py --cpu_devices=2 --batch_size=64

On a CPU-only machine the N replicas are logical devices of the one CPU (they share its cores), so
this measures the cost of the distributed code path, not a speed-up; on a multi-GPU machine pass
--cpu_devices=0 to mirror over the GPUs. Both trainers train the 28x28 DCGAN on the same pipeline,
built as `pipeline.train_gan` builds them (batch norm synchronized when N > 1); rounds are
interleaved so machine noise hits both alike, and medians are reported.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tfgan_opt import (DataConfig, LossConfig, ModelConfig, TrainConfig, data,  # noqa: E402
                       distribute, models)
from tfgan_opt.train import GANTrainer  # noqa: E402

MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist-t10k",
                     "t10k-images-idx3-ubyte.gz")
flags.DEFINE_string("dataset", f"idx:{MNIST}" if os.path.exists(MNIST) else "digits", "Source.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("cpu_devices", 2, "Logical CPU devices to mirror over; 0: the GPUs.")
flags.DEFINE_integer("steps", 20, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_integer("width", 64, "DCGAN width (64: the TensorFlow tutorial's size).")
FLAGS = flags.FLAGS


def make_trainer(strategy, dataset):
    """A GANTrainer for the 28x28 DCGAN under ``strategy`` and a step function over ``dataset``."""
    model_config = ModelConfig(image_size=28, width=FLAGS.width, discriminator_width=FLAGS.width)
    with strategy.scope():
        generator = models.build_generator(model_config, 0,
                                           sync_batch_norm=strategy.num_replicas_in_sync > 1)
        discriminator = models.build_discriminator(model_config, 0)
    trainer = GANTrainer(generator, discriminator, LossConfig(), TrainConfig(steps=10**9),
                         strategy=strategy)
    iterator = trainer.iterate(dataset)
    return lambda: trainer.train_step(iterator)


def time_steps(run_one, steps):
    start = time.perf_counter()
    for _ in range(steps):
        out = run_one()
    tf.nest.map_structure(lambda t: t.numpy(), out)  # wait for the last step
    return (time.perf_counter() - start) / steps


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    # Before anything else runs: logical devices are fixed once TensorFlow initializes.
    mirrored = distribute.make_strategy("mirrored", num_cpu_devices=FLAGS.cpu_devices or None)
    dataset = data.make_dataset(DataConfig(source=FLAGS.dataset, image_size=28,
                                           batch_size=FLAGS.batch_size))
    loops = {1: make_trainer(tf.distribute.get_strategy(), dataset),
             mirrored.num_replicas_in_sync: make_trainer(mirrored, dataset)}
    for run_one in loops.values():  # warm-up: tracing, caches, the shuffle buffer
        time_steps(run_one, 3)
    seconds = {replicas: [] for replicas in loops}
    for _ in range(FLAGS.rounds):
        for replicas, run_one in loops.items():
            seconds[replicas].append(time_steps(run_one, FLAGS.steps))
    print(f"dataset {FLAGS.dataset}, 28x28 DCGAN width {FLAGS.width}, global batch "
          f"{FLAGS.batch_size}, {FLAGS.steps} steps x {FLAGS.rounds} interleaved rounds, "
          f"{os.cpu_count()} CPU cores")
    print("| replicas | median ms/step | images/s | rounds (ms/step) |")
    print("|---|---|---|---|")
    for replicas, values in seconds.items():
        median = float(np.median(values))
        rounds = ", ".join(f"{1000 * v:.0f}" for v in values)
        print(f"| {replicas} | {1000 * median:.0f} | {FLAGS.batch_size / median:.0f} | {rounds} |")


if __name__ == "__main__":
    app.run(main)
