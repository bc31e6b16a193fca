r"""Measures the evaluation stage on real MNIST test digits: classifier quality and metric speed.

Trains (or loads from the cache) the feature classifier on the 10,000 MNIST test digits, reports
its held-out accuracy and training time, then times `compute_metrics` on 10,000 "generated" images
(the real digits plus Gaussian pixel noise, clipped to [-1, 1]) against the 10,000 real ones, and
prints the real-vs-real noise floor for comparison.

  PYTHONPATH=. python experiments/benchmarks/bench_evaluation.py \
      --mnist_dir=../shared/data/mnist-t10k --cache_dir=/tmp/tfgan_opt_feature_cache
"""

import gzip
import os
import time

import numpy as np
from absl import app, flags

from tfgan_opt.evaluation import features

FLAGS = flags.FLAGS
flags.DEFINE_string("mnist_dir", os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                              "shared", "data", "mnist-t10k"),
                    "Folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.")
flags.DEFINE_string("cache_dir", "/tmp/tfgan_opt_feature_cache", "Feature classifier cache.")
flags.DEFINE_integer("epochs", 6, "Classifier training epochs.")
flags.DEFINE_float("noise_std", 0.3, "Std of the pixel noise that makes the 'generated' images.")
flags.DEFINE_integer("seed", 0, "Seed of the classifier, the noise and the metric subsets.")

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def read_idx(path, expected_magic):
    """Reads a gzipped IDX file: big-endian int32 magic and dims, then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{path}: magic {magic}, expected {expected_magic}")
    num_dims = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=num_dims, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * num_dims).reshape(tuple(dims))


def load_mnist_test(folder):
    """Returns (float32 [10000, 28, 28, 1] in [-1, 1], int64 [10000] labels)."""
    images = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), _IMAGES_MAGIC)
    labels = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), _LABELS_MAGIC)
    return (images[..., None].astype(np.float32) / 127.5 - 1.0), labels.astype(np.int64)


def print_table(title, rows):
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<24} {value}")


def timed(function, *args, **kwargs):
    """Returns (result, wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.monotonic(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.monotonic() - wall, time.process_time() - cpu


def _seconds(wall, cpu):
    return f"{wall:.1f} s wall, {cpu:.1f} s CPU"


def _metric_rows(results):
    return [(key, f"{value:.4f}" if isinstance(value, float) else value)
            for key, value in sorted(results.items())]


def main(argv):
    del argv
    if not os.path.isdir(FLAGS.mnist_dir):
        print(f"Skipping: MNIST test digits not found in {os.path.abspath(FLAGS.mnist_dir)}")
        return 0
    real_images, labels = load_mnist_test(FLAGS.mnist_dir)

    extractor, *classifier_seconds = timed(
        features.get_or_train_feature_extractor, real_images, labels, 10, FLAGS.cache_dir,
        epochs=FLAGS.epochs, seed=FLAGS.seed)

    rng = np.random.default_rng(FLAGS.seed)
    noisy = real_images + rng.normal(scale=FLAGS.noise_std, size=real_images.shape)
    fake_images = np.clip(noisy, -1.0, 1.0).astype(np.float32)

    results, *metrics_seconds = timed(features.compute_metrics, extractor, real_images,
                                      fake_images, labels, 10, seed=FLAGS.seed)
    floor, *floor_seconds = timed(features.real_noise_floor, extractor, real_images, labels, 10,
                                  seed=FLAGS.seed)

    # Wall time depends on what else shares the cores; the load average says how crowded they were.
    print_table("Feature classifier", [
        ("held-out accuracy", f"{extractor.accuracy:.4f}"),
        ("train or load", _seconds(*classifier_seconds)),
        ("CPU cores / load avg", f"{os.cpu_count()} / {os.getloadavg()[0]:.1f}"),
    ])
    print_table(f"Noisy real (std {FLAGS.noise_std}) vs real: compute_metrics "
                f"{_seconds(*metrics_seconds)}", _metric_rows(results))
    print_table(f"Noise floor, real half vs real half: {_seconds(*floor_seconds)}",
                _metric_rows(floor))
    return 0


if __name__ == "__main__":
    app.run(main)
