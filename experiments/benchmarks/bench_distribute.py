"""Step time of GANTrainer on N mirrored replicas, at a fixed global batch.

    for n in 1 2 1 2; do python experiments/benchmarks/bench_distribute.py --cpu_devices=$n; done

--cpu_devices=1 trains on the default strategy (one device, the CPU undivided); N > 1 mirrors over
N logical devices of the CPU; --cpu_devices=0 mirrors over the GPUs. On a CPU-only machine the
logical devices share the CPU's cores, so this measures what the distributed code path costs, not a
speed-up. One configuration per process: the CPU can only be divided before TensorFlow starts,
and timed in one process with the other trainer the 1-replica step took 2.6 s instead of 1.0-1.6 s
(probably the idle trainer's input pipeline, which keeps prefetching). Alternate the runs so machine noise hits both alike.
Models are built as `pipeline.train_gan` builds them (batch norm synchronized when N > 1). Prints
one Markdown table row: replicas | global batch | median ms/step | images/s | each round's ms/step.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tfgan_opt import DataConfig, LossConfig, ModelConfig, TrainConfig, data, models  # noqa: E402
from tfgan_opt.training import distribute  # noqa: E402
from tfgan_opt.training.trainer import GANTrainer  # noqa: E402

MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist-t10k",
                     "t10k-images-idx3-ubyte.gz")
flags.DEFINE_string("dataset", f"idx:{MNIST}" if os.path.exists(MNIST) else "digits", "Source.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("cpu_devices", 2, "1: default strategy; N > 1: mirror over N logical CPU "
                     "devices; 0: mirror over the GPUs.")
flags.DEFINE_integer("steps", 20, "Timed steps per round.")
flags.DEFINE_integer("rounds", 3, "Timed rounds.")
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
    if FLAGS.cpu_devices == 1:
        strategy = tf.distribute.get_strategy()
    else:
        strategy = distribute.make_strategy("mirrored", num_cpu_devices=FLAGS.cpu_devices or None)
    dataset = data.make_dataset(DataConfig(source=FLAGS.dataset, image_size=28,
                                           batch_size=FLAGS.batch_size))
    run_one = make_trainer(strategy, dataset)
    time_steps(run_one, 3)  # warm-up: tracing, caches, the shuffle buffer
    seconds = [time_steps(run_one, FLAGS.steps) for _ in range(FLAGS.rounds)]
    median = float(np.median(seconds))
    rounds = ", ".join(f"{1000 * s:.0f}" for s in seconds)
    print(f"| {strategy.num_replicas_in_sync} | {FLAGS.batch_size} | {1000 * median:.0f} | "
          f"{FLAGS.batch_size / median:.0f} | {rounds} |  (28x28 DCGAN width {FLAGS.width}, "
          f"{FLAGS.dataset.split('/')[-1]}, {os.cpu_count()} CPU cores)", flush=True)


if __name__ == "__main__":
    app.run(main)
