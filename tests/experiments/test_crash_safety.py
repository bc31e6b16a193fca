"""Never lose a run: atomic writes on a full disk, non-finite training, kill -9 and resume, determinism.

The kill tests run the scripts as a user does (subprocesses), kill them with SIGKILL part-way and
run the same command again. Related cases covered elsewhere:
  rerun with another configuration refused  -- tests/test_rundir.py::test_other_configuration_is_refused_and_nothing_is_lost,
                                               tests/test_cli_train.py::test_train_script_trains_saves_and_refuses_another_config_on_the_same_run_dir
  --overwrite starts over                   -- tests/test_rundir.py::test_overwrite_starts_a_fresh_run
  in-process resume restores every state    -- tests/test_train.py::test_rerun_on_run_dir_resumes_from_the_last_checkpoint
  non-finite loss names the step            -- tests/test_train.py::test_non_finite_loss_stops_training_naming_the_step
  full disk through the CLI                 -- tests/test_bad_inputs.py::test_disk_full_during_training_fails_with_one_line_and_keeps_what_was_written
"""

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tfgan_opt.testing import REPO, tiny_dataset
from PIL import Image

from tfgan_opt import LossConfig, ModelConfig, NonFiniteError, RunDirError, TrainConfig, models
from tfgan_opt.core.artifacts import atomic_file, atomic_write_bytes, atomic_write_json, read_json
from tfgan_opt.core.compat import keras
from tfgan_opt.export.litert import read_tflite
from tfgan_opt.core.rundir import prepare_run_dir
from tfgan_opt.training.trainer import GANTrainer

TRAIN = os.path.join(REPO, "experiments", "train.py")
PIPELINE = os.path.join(REPO, "experiments", "pipeline.py")
TINY = ["--image_size=8", "--width=4", "--discriminator_width=4", "--latent_dim=4",
        "--batch_size=8", "--limit=64"]
_DEADLINE_S = 240


# ----------------------------------------------------------------------------- helpers


def _command(script, *flags):
    return [sys.executable, script, *flags]


def _env():
    return {**os.environ, "PYTHONPATH": REPO}  # the worktree's library, not the installed one


def _run(script, *flags):
    return subprocess.run(_command(script, *flags), capture_output=True, text=True,
                          timeout=_DEADLINE_S, cwd=REPO, env=_env())


def _start_and_kill_when(script, flags, log_path, ready):
    """Starts ``script``, SIGKILLs it as soon as ``ready()`` holds; fails if it ended first."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(_command(script, *flags), stdout=log, stderr=log, cwd=REPO,
                                   env=_env())
    try:
        deadline = time.monotonic() + _DEADLINE_S
        while not ready():
            assert process.poll() is None, f"ended before the kill:\n{_tail(log_path)}"
            assert time.monotonic() < deadline, f"never got ready:\n{_tail(log_path)}"
            time.sleep(0.05)
        assert process.poll() is None, f"ended before the kill:\n{_tail(log_path)}"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def _tail(path, chars=3000):
    with open(path) as f:
        return f.read()[-chars:]


def _checkpoint_step(prefix):
    return int(re.search(r"ckpt-(\d+)$", prefix).group(1))


def _plant_leftovers(stage_dir):
    """What a kill in the middle of a write leaves: our temporaries and CheckpointManager's."""
    leftovers = [os.path.join(stage_dir, "samples", ".tmp-step_999999.png.0123456789ab"),
                 os.path.join(stage_dir, ".tmp-generator.keras.0123456789ab", "generator.keras"),
                 os.path.join(stage_dir, "checkpoints", "ckpt-999_temp", "part-0")]
    for path in leftovers:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"half-written")
    return leftovers


def _load_checkpoints(directory):
    """Reads every tensor of every checkpoint the manager's state file lists."""
    state = tf.train.get_checkpoint_state(directory)
    assert state is not None, directory
    for prefix in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)


def _assert_run_dir_complete(run_dir):
    """Every file under ``run_dir`` is whole and loadable, and no temporary is left."""
    for root, dirs, files in os.walk(run_dir):
        for name in dirs + files:
            assert not name.startswith(".tmp-") and not name.endswith("_temp"), (root, name)
        if "checkpoint" in files:
            _load_checkpoints(root)
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".json"):
                read_json(path)
            elif name.endswith(".png"):
                with Image.open(path) as image:
                    image.load()
            elif name == "generator.keras":
                models.load_generator(path)
            elif name == "discriminator.keras":
                models.load_discriminator(path)
            elif name.endswith(".keras"):
                keras.models.load_model(path, compile=False)
            elif name.endswith(".tflite"):
                read_tflite(path)
            elif name.endswith(".md"):
                with open(path, encoding="utf-8") as f:
                    assert f.read().strip()
    # TensorBoard event files are append-only logs, not artifacts: a kill may cut their last
    # record, which TensorBoard skips; a resumed run writes a new file beside them.


class _PoisonKernel:
    """A hand-driven trainer callback that fills one kernel with NaN at one step.

    ``at_batch_begin`` poisons before that (0-based) step runs, so its loss goes NaN;
    ``at_checkpoint`` poisons where tfmot applies its masks, after the step's loss was checked:
    only the weight check can see that one.
    """

    def __init__(self, kernel, at_batch_begin=None, at_checkpoint=None):
        self._kernel, self._batch, self._checkpoint = kernel, at_batch_begin, at_checkpoint

    def _poison(self):
        self._kernel.assign(tf.fill(self._kernel.shape, np.nan))

    def on_train_begin(self):
        pass

    def on_train_batch_begin(self, step):
        if step == self._batch:
            self._poison()

    def on_epoch_end(self, step):
        if step == self._checkpoint:
            self._poison()


def _poisoned_trainer(model_config, steps, **poison):
    generator = models.build_generator(model_config, seed=0)
    discriminator = models.build_discriminator(model_config, seed=0)
    callback = _PoisonKernel(generator.network.trainable_weights[0], **poison)
    config = TrainConfig(steps=steps, log_every=1, checkpoint_every=1, seed=0)
    return GANTrainer(generator, discriminator, LossConfig(), config, callbacks=[callback])


def _saved_weights_are_finite(checkpoint_prefix):
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return all(np.isfinite(reader.get_tensor(name)).all()
               for name, dtype in reader.get_variable_to_dtype_map().items() if dtype.is_floating)


# ----------------------------------------------------------------------------- atomic writes


def _fail_writes_half_way(monkeypatch):
    real_write = os.write

    def write(fd, data):
        real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def test_full_disk_during_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path,
                                                                                  monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_json(str(path), {"fd": 1.5})
    with monkeypatch.context() as patch:
        _fail_writes_half_way(patch)
        with pytest.raises(OSError) as info:
            atomic_write_json(str(path), {"fd": 2.5, "padding": "x" * 10_000})
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(path)  # "disk full while writing <path>" needs it
    assert read_json(str(path)) == {"fd": 1.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_full_disk_while_a_model_writer_saves_keeps_the_old_file(tmp_path):
    path = tmp_path / "generator.keras"
    atomic_write_bytes(str(path), b"previous model")

    def full_disk_writer(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a mod")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # zipfile raises without a name

    with pytest.raises(OSError) as info:
        with atomic_file(str(path)) as tmp:
            assert tmp.endswith(".keras")  # writers pick the format from the extension
            full_disk_writer(tmp)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["generator.keras"]


def test_atomic_writes_give_files_and_directories_the_umask_permissions(tmp_path):
    from tfgan_opt.core.artifacts import atomic_directory
    old = os.umask(0o022)
    try:
        atomic_write_bytes(str(tmp_path / "a.bin"), b"x")
        with atomic_directory(str(tmp_path / "saved_model")) as tmp_dir:
            atomic_write_bytes(os.path.join(tmp_dir, "saved_model.pb"), b"y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "saved_model").st_mode) == 0o755


def test_disk_full_message_names_the_file_for_python_and_tensorflow_writers():
    import _cli
    python_error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/a/metrics.json")
    assert _cli.disk_full_message(python_error) == (
        f"disk full while writing /runs/a/metrics.json: {os.strerror(errno.ENOSPC)}")
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/runs/a/x.png")
    assert _cli.disk_full_message(quota).startswith("disk full while writing /runs/a/x.png")
    tf_error = tf.errors.ResourceExhaustedError(
        None, None, "/runs/a/train/checkpoints/ckpt-3_temp/part-0; No space left on device\nmore")
    assert _cli.disk_full_message(tf_error) == (
        "disk full while writing: /runs/a/train/checkpoints/ckpt-3_temp/part-0; "
        "No space left on device")
    assert _cli.disk_full_message(OSError(errno.EACCES, "Permission denied", "/x")) is None
    assert _cli.disk_full_message(ValueError("No space left on device")) is None


def test_switching_a_stage_off_on_an_existing_run_is_refused(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, {"train": {"steps": 4}, "prune": {"target_sparsity": 0.5}})
    os.makedirs(os.path.join(run_dir, "prune"))
    with pytest.raises(RunDirError, match=r"\(prune differ\).*--overwrite"):
        prepare_run_dir(run_dir, {"train": {"steps": 4}, "prune": None})


def test_trainer_reopening_a_run_dir_removes_leftovers_but_not_other_workers_files(
        tmp_path, tiny_model_config):
    run_dir = tmp_path / "run"
    leftovers = _plant_leftovers(str(run_dir))
    from tfgan_opt.training.distribute import WORKER_TEMP_PREFIX
    other_worker = run_dir / "checkpoints" / f"{WORKER_TEMP_PREFIX}1" / "ckpt-3_temp"
    other_worker.mkdir(parents=True)
    trainer = _poisoned_trainer(tiny_model_config, steps=1)  # poisons nothing
    trainer.train(tiny_dataset(), run_dir=str(run_dir))
    assert not any(os.path.exists(p) for p in leftovers)
    assert other_worker.is_dir()  # a non-chief may be saving there right now


# ----------------------------------------------------------------------------- non-finite


def test_non_finite_weight_is_never_checkpointed_and_the_error_names_the_step(
        tmp_path, tiny_model_config):
    run_dir = str(tmp_path / "run")
    trainer = _poisoned_trainer(tiny_model_config, steps=4, at_checkpoint=2)
    with pytest.raises(NonFiniteError, match=r"non-finite weights \(generator .*\) at step 2; "
                                             r"training stopped before saving, last good "
                                             r"checkpoint kept: .*ckpt-1"):
        trainer.train(tiny_dataset(), run_dir=run_dir)
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-1")
    assert _saved_weights_are_finite(tf.train.latest_checkpoint(checkpoints))
    assert os.listdir(os.path.join(run_dir, "samples")) == ["step_000001.png"]


def test_non_finite_loss_stops_before_saving_and_keeps_the_last_good_checkpoint(
        tmp_path, tiny_model_config):
    run_dir = str(tmp_path / "run")
    trainer = _poisoned_trainer(tiny_model_config, steps=4, at_batch_begin=2)  # 0-based: step 3
    with pytest.raises(NonFiniteError, match=r"at step 3; training stopped, last good "
                                             r"checkpoint kept: .*ckpt-2"):
        trainer.train(tiny_dataset(), run_dir=run_dir)
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert latest.endswith("ckpt-2") and _saved_weights_are_finite(latest)


def test_in_memory_training_also_checks_weights_at_each_checkpoint_interval(tiny_model_config):
    trainer = _poisoned_trainer(tiny_model_config, steps=3, at_checkpoint=1)
    with pytest.raises(NonFiniteError, match=r"non-finite weights .* at step 1; training stopped "
                                             r"before saving \(try"):
        trainer.train(tiny_dataset())


# ----------------------------------------------------------------------------- kill -9


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint_and_finishes(tmp_path):
    run_dir = tmp_path / "run"
    flags = [f"--run_dir={run_dir}", *TINY, "--steps=100", "--checkpoint_every=5",
             "--log_every=5"]
    checkpoints = run_dir / "train" / "checkpoints"
    _start_and_kill_when(TRAIN, flags, tmp_path / "killed.log",
                         ready=lambda: (checkpoints / "checkpoint").exists())
    killed_at = _checkpoint_step(tf.train.latest_checkpoint(str(checkpoints)))
    leftovers = _plant_leftovers(str(run_dir / "train"))
    assert (run_dir / ".tfgan_opt.lock").exists()  # stale: the rerun takes it over

    rerun = _run(TRAIN, *flags)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # Resumed from the last checkpoint there was, so at most one interval (5 steps) was lost.
    assert re.search(rf"Resumed from .*ckpt-{killed_at} \(step {killed_at}\)", rerun.stderr)
    assert 0 < killed_at < 100
    assert not any(os.path.exists(p) for p in leftovers)
    _assert_run_dir_complete(str(run_dir))
    assert read_json(str(run_dir / "train" / "stage.json"))["steps"] == 100
    assert (run_dir / "train" / "samples" / "step_000100.png").exists()
    assert _checkpoint_step(tf.train.latest_checkpoint(str(checkpoints))) == 100


@pytest.mark.slow
def test_pipeline_killed_during_compression_resumes_without_training_again(tmp_path):
    run_dir = tmp_path / "run"
    flags = [f"--run_dir={run_dir}", *TINY, "--steps=4", "--checkpoint_every=2", "--log_every=2",
             "--recovery_steps=16", "--recovery_steps_per_removed=0", "--qat_steps=2",
             "--pruning_frequency=1", "--channel_macs_target=1",  # 1: no channel stage
             "--target_sparsity=0.5", "--formats=float32", "--benchmark_batch=0",
             "--num_samples=16", "--benchmark_runs=2", "--benchmark_rounds=1"]
    train = run_dir / "train"
    recovery_checkpoints = run_dir / "prune" / "trainer" / "checkpoints"
    _start_and_kill_when(
        PIPELINE, flags, tmp_path / "killed.log",
        ready=lambda: (train / "stage.json").exists() and (recovery_checkpoints / "checkpoint").exists())
    trained = {name: ((train / name).read_bytes(), os.path.getmtime(train / name))
               for name in ("stage.json", "generator.keras", "discriminator.keras")}
    killed_at = _checkpoint_step(tf.train.latest_checkpoint(str(recovery_checkpoints)))

    rerun = _run(PIPELINE, *flags)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "train: already done" in rerun.stderr
    assert re.search(rf"Resumed from {recovery_checkpoints}/ckpt-{killed_at} ", rerun.stderr)
    assert trained == {name: ((train / name).read_bytes(), os.path.getmtime(train / name))
                       for name in trained}
    for stage in ("prune", "qat", "export", "benchmark", "evaluate", "report"):
        assert (run_dir / stage / "stage.json").exists(), stage
    assert not (run_dir / "channels").exists()
    assert (run_dir / "report.md").exists()
    _assert_run_dir_complete(str(run_dir))


# ----------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights_in_two_processes_with_op_determinism(tmp_path):
    # enable_op_determinism is process-global and cannot be undone: each run gets its process.
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = [subprocess.Popen(
        _command(TRAIN, f"--run_dir={run}", *TINY, "--steps=5", "--checkpoint_every=5",
                 "--seed=3", "--deterministic"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env())
        for run in runs]
    for process in processes:
        _, stderr = process.communicate(timeout=_DEADLINE_S)
        assert process.returncode == 0, stderr[-3000:]
    for name, load in (("discriminator.keras", models.load_discriminator),
                       ("generator.keras", models.load_generator)):
        first, second = (load(str(run / "train" / name)).network.get_weights() for run in runs)
        assert len(first) == len(second) > 0
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)
    model_config = ModelConfig.from_dict(read_json(str(runs[0] / "config.json"))["model"])
    initial = models.build_generator(model_config, seed=3).network.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(initial, first))  # it did train


# ----------------------------------------------------------------------------- signals, locks


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_saves_the_current_step_and_a_second_process_is_locked_out(
        tmp_path, sig):
    run_dir = tmp_path / "run"
    flags = [f"--run_dir={run_dir}", *TINY, "--steps=100000", "--checkpoint_every=1000",
             "--log_every=1"]
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        first = subprocess.Popen(_command(TRAIN, *flags), stdout=log, stderr=log, cwd=REPO,
                                 env=_env())
    try:
        deadline = time.monotonic() + _DEADLINE_S
        while not re.search(r"step 3/100000", _tail(log_path)):
            assert first.poll() is None, _tail(log_path)
            assert time.monotonic() < deadline, _tail(log_path)
            time.sleep(0.05)
        if sig == signal.SIGTERM:
            second = _run(TRAIN, *flags)
            assert second.returncode == 1, second.stderr[-2000:]
            assert "Traceback" not in second.stderr
            assert re.search(rf"^error: run directory .*run is in use by process {first.pid} on ",
                             second.stderr.strip().splitlines()[-1])
        first.send_signal(sig)
        first.wait(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    stderr = _tail(log_path, 20000)
    assert first.returncode == 128 + sig, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    match = re.fullmatch(rf"error: stopped by {signal.Signals(sig).name} at step (\d+); "
                         r"checkpoint saved, rerun the same command to resume", last)
    assert match, last
    latest = tf.train.latest_checkpoint(str(run_dir / "train" / "checkpoints"))
    assert _checkpoint_step(latest) == int(match.group(1)) >= 3
    assert not (run_dir / ".tfgan_opt.lock").exists()
