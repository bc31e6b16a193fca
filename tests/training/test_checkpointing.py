"""Damaged checkpoints: resume from the newest one that restores; never start over silently."""

import os
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt import LossConfig, TrainConfig, models
from tfgan_opt.core.errors import Interrupted, RunDirError
from tfgan_opt.testing import tiny_dataset, tiny_model_config
from tfgan_opt.training.trainer import GANTrainer


def _trainer(model_config, steps, **kwargs):
    config = TrainConfig(steps=steps, log_every=1, checkpoint_every=1, keep_checkpoints=5, seed=0,
                         **kwargs)
    return GANTrainer(models.build_generator(model_config, seed=0),
                      models.build_discriminator(model_config, seed=0), LossConfig(), config)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A run directory with checkpoints at steps 1, 2 and 3 (trained once per module)."""
    run_dir = str(tmp_path_factory.mktemp("checkpointing") / "run")
    _trainer(tiny_model_config(latent_dim=4), 3).train(tiny_dataset(), run_dir=run_dir)
    return run_dir


@pytest.fixture
def trained(trained_once, tmp_path):
    """A fresh copy of `trained_once`, and the reader of its checkpoint at step 2."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_once, run_dir)
    return run_dir, tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints", "ckpt-2"))


def _restored_step(run_dir, model_config, steps=3):
    trainer = _trainer(model_config, steps)
    return trainer.restore(run_dir), trainer


def _ckpt(run_dir, name):
    return os.path.join(run_dir, "checkpoints", name)


def _data_file(run_dir, step):
    return _ckpt(run_dir, f"ckpt-{step}.data-00000-of-00001")


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _bit_flip(path):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0x40
        f.seek(0)
        f.write(data)


DAMAGES = {
    "index_file_deleted": (lambda r: os.remove(_ckpt(r, "checkpoint")), 3),
    "index_file_garbage": (lambda r: open(_ckpt(r, "checkpoint"), "wb").write(b"\x00\xffjunk{"), 3),
    "index_points_to_a_missing_checkpoint": (
        lambda r: open(_ckpt(r, "checkpoint"), "w").write('model_checkpoint_path: "ckpt-9"\n'), 3),
    "newest_data_truncated": (lambda r: _truncate(_data_file(r, 3)), 2),
    "newest_data_bit_flipped": (lambda r: _bit_flip(_data_file(r, 3)), 2),
    "newest_tensor_index_garbage": (
        lambda r: open(_ckpt(r, "ckpt-3.index"), "wb").write(os.urandom(64)), 2),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_checkpoints_fall_back_to_the_newest_that_restores(trained, tiny_model_config,
                                                                   damage, caplog):
    run_dir, weights_at_2 = trained
    apply, expected_step = DAMAGES[damage]
    apply(run_dir)
    step, trainer = _restored_step(run_dir, tiny_model_config)
    assert step == expected_step
    if expected_step == 2:
        assert any("ckpt-3 does not restore" in r.getMessage() and "resuming from" in
                   r.getMessage() for r in caplog.records)
        kernel = trainer.generator.network.get_layer("project").kernel.numpy()
        saved = weights_at_2.get_tensor("generator/layer_with_weights-0/kernel/.ATTRIBUTES/"
                                        "VARIABLE_VALUE")
        np.testing.assert_allclose(kernel, saved, rtol=0, atol=0)
    # The index now names what restores, so the next save rotates old checkpoints normally.
    assert tf.train.latest_checkpoint(_ckpt(run_dir, "")).endswith(f"ckpt-{expected_step}")


def test_training_on_after_a_lost_index_continues_from_the_last_checkpoint(trained,
                                                                           tiny_model_config):
    run_dir, _ = trained
    os.remove(_ckpt(run_dir, "checkpoint"))
    history = _trainer(tiny_model_config, 4).train(tiny_dataset(), run_dir=run_dir)
    assert [h["step"] for h in history] == [4]
    assert tf.train.latest_checkpoint(_ckpt(run_dir, "")).endswith("ckpt-4")


def test_no_checkpoint_that_restores_is_an_error_not_a_fresh_start(trained, tiny_model_config):
    run_dir, _ = trained
    for step in (1, 2, 3):
        _truncate(_data_file(run_dir, step))
    with pytest.raises(RunDirError, match=r"no checkpoint in .* restores \(newest .*ckpt-3"):
        _restored_step(run_dir, tiny_model_config)


def test_checkpoint_past_the_requested_steps_is_refused(trained, tiny_model_config):
    run_dir, _ = trained
    trainer = _trainer(tiny_model_config, 2)
    with pytest.raises(RunDirError, match=r"checkpoint at step 3, past steps=2; pass steps >= 3"):
        trainer.train(tiny_dataset(), run_dir=run_dir)


class _SendSignal:
    """A callback that sends ``signal_number`` to this process before step ``at_step``."""

    def __init__(self, signal_number, at_step):
        self.signal_number, self.at_step = signal_number, at_step

    def on_train_begin(self):
        pass

    def on_train_batch_begin(self, step):
        if step == self.at_step:
            os.kill(os.getpid(), self.signal_number)

    def on_epoch_end(self, step):
        pass


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_at_the_current_step_and_stops(tmp_path, tiny_model_config,
                                                                signal_number):
    run_dir = str(tmp_path / "run")
    config = TrainConfig(steps=20, log_every=1, checkpoint_every=10, seed=0)
    trainer = GANTrainer(models.build_generator(tiny_model_config, seed=0),
                         models.build_discriminator(tiny_model_config, seed=0), LossConfig(),
                         config, callbacks=[_SendSignal(signal_number, at_step=3)])
    previous = signal.getsignal(signal_number)
    with pytest.raises(Interrupted, match=rf"stopped by {signal.Signals(signal_number).name} at "
                                          r"step 4; checkpoint saved") as raised:
        trainer.train(tiny_dataset(), run_dir=run_dir)
    assert raised.value.exit_status == 128 + signal_number
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")).endswith("ckpt-4")
    assert signal.getsignal(signal_number) is previous
