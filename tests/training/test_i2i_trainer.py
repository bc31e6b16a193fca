"""Tests of tfgan_opt.training.i2i_trainer on tiny models and synthetic patches."""

import numpy as np
import tensorflow as tf

from tfgan_opt.data import degrade
from tfgan_opt.models import sr
from tfgan_opt.training import i2i_trainer


def _dataset(task="sr_x2", size=8, batch=4):
    rng = np.random.default_rng(0)
    coarse = rng.uniform(-1, 1, (batch, size // 4, size // 4, 3)).astype(np.float32)
    clean = tf.image.resize(coarse, (size, size), "bilinear")
    return tf.data.Dataset.from_tensors((degrade.degrade(task, clean, [0, 0]), clean)).repeat()


def _l1(generator, dataset):
    low, high = next(iter(dataset))
    return float(tf.reduce_mean(tf.abs(generator(low) - high)))


def test_l1_training_lowers_the_l1_error_and_a_time_budget_stops_it():
    generator = sr.build_sr_generator(2, width=4, blocks=1, seed=0)
    dataset = _dataset()
    before = _l1(generator, dataset)
    record = i2i_trainer.train_l1(generator, dataset, 30, 1e-2, log_every=100)
    assert record["steps"] == 30
    assert _l1(generator, dataset) < 0.8 * before
    record = i2i_trainer.train_l1(generator, dataset, 1000, 1e-3, max_seconds=1e-6)
    assert record["steps"] == 1


def test_adversarial_fine_tune_moves_only_the_copy():
    generator = sr.build_sr_generator(2, width=4, blocks=1, seed=0)
    copy = i2i_trainer.copy_generator(generator)
    before = [w.copy() for w in generator.network.get_weights()]
    record = i2i_trainer.train_adversarial(copy, sr.build_patchgan(4, 2, seed=1),
                                           _dataset(size=16), 2, 1e-3, 0.1)
    assert record["steps"] == 2 and np.isfinite(record["adversarial"])
    for old, new in zip(before, generator.network.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not all(np.array_equal(a, b) for a, b in zip(before, copy.network.get_weights()))
