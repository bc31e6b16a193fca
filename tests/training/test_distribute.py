"""tf.distribute: strategies by name, N replicas == one device, pruning and multi-worker runs.

Logical CPU devices can only be configured before TensorFlow initializes, and every
MultiWorkerMirroredStrategy worker is a process of its own, so those tests run subprocesses (each
bounded by a timeout and killed when it runs past it) and compare what they write.
"""

import json
import os
import socket
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest
import tensorflow as tf
from tfgan_opt.testing import REPO, tiny_dataset

from tfgan_opt import ConfigError, LossConfig, ModelConfig, TrainConfig, models
from tfgan_opt.training import distribute
from tfgan_opt.training.trainer import GANTrainer

TESTS = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(REPO, "experiments", "train.py")
# Two replicas all-reduce gradients and batch-norm sums in another order than one device adds
# them: float32 rounding (eps 1.2e-7) of values ~0.1 differs by a few ulps, 4e-9 measured after 3
# Adam steps. atol 1e-7 allows ~10 ulps there; rtol 1e-5 covers the values near 1 (BN gamma,
# variance). Per-replica (unsynchronized) batch norm misses by 8e-4, far outside.
RTOL, ATOL = 1e-5, 1e-7
SUBPROCESS_TIMEOUT = 240
TINY_FLAGS = ["--image_size=8", "--width=4", "--discriminator_width=4", "--latent_dim=4",
              "--batch_size=8", "--log_every=1", "--checkpoint_every=2"]

_FakeStrategy = namedtuple("_FakeStrategy", "cluster_resolver")


def _env(**extra):
    # The subprocesses must import this checkout's tfgan_opt, not an installed copy.
    path = os.pathsep.join([REPO, TESTS, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _run_python(args, timeout=SUBPROCESS_TIMEOUT, **env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=_env(**env), timeout=timeout)


def _fake_strategy(task_type, task_id, jobs):
    cluster = tf.train.ClusterSpec({job: [f"127.0.0.1:{1000 + i}" for i in range(n)]
                                    for job, n in jobs.items()})
    return _FakeStrategy(tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster, task_type=task_type, task_id=task_id))


# ------------------------------------------------------------------------------ strategy names


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "horovod"}, "strategy='horovod' is not one of default, mirrored, multi_worker, tpu"),
    ({"name": "default", "num_cpu_devices": 2}, "only applies to strategy 'mirrored'"),
    ({"name": "mirrored", "tpu_address": "local"}, "only applies to strategy 'tpu'"),
    ({"name": "mirrored", "num_cpu_devices": 0}, "cpu_devices=0 must be positive"),
])
def test_invalid_strategy_raises_one_line_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        distribute.make_strategy(**kwargs)
    assert "\n" not in str(error.value)


def test_multi_worker_without_tf_config_raises_config_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")


@pytest.mark.parametrize("flags, message, status", [
    # An enum flag: absl refuses it while parsing, as a usage error.
    (["--strategy=horovod"], "error: flag --strategy=horovod: value should be one of", 2),
    # No TPU here: the thin TPU path must fail fast, naming the address, without a traceback.
    (["--strategy=tpu", "--tpu=local"], "error: no TPU reachable at local", 1),
])
def test_train_script_rejects_unusable_strategy_with_one_line(tmp_path, flags, message, status):
    result = _run_python([TRAIN, f"--run_dir={tmp_path / 'run'}", *flags], timeout=120)
    assert result.returncode == status, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------- chief and worker files


@pytest.mark.parametrize("task_type, task_id, jobs, chief", [
    ("worker", 0, {"worker": 2}, True),
    ("worker", 1, {"worker": 2}, False),
    ("chief", 0, {"chief": 1, "worker": 2}, True),
    ("worker", 0, {"chief": 1, "worker": 2}, False),
])
def test_chief_is_the_chief_task_or_worker_0_without_one(task_type, task_id, jobs, chief):
    assert distribute.is_chief(_fake_strategy(task_type, task_id, jobs)) is chief


def test_single_process_strategies_are_the_chief_and_write_to_the_run_dir(tmp_path):
    strategy = tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    assert distribute.worker_temp_dir(str(tmp_path), strategy) == str(tmp_path)
    with distribute.worker_write_dir(str(tmp_path), strategy) as directory:
        assert directory == str(tmp_path)
    assert tmp_path.exists()


def test_non_chief_writes_to_a_temp_dir_that_is_deleted_even_on_error(tmp_path):
    strategy = _fake_strategy("worker", 1, {"worker": 2})
    expected = str(tmp_path / "workertemp_1")
    assert distribute.worker_temp_dir(str(tmp_path), strategy) == expected
    with pytest.raises(OSError):
        with distribute.worker_write_dir(str(tmp_path), strategy) as directory:
            assert directory == expected and os.path.isdir(directory)
            (tmp_path / "workertemp_1" / "ckpt-1.index").write_text("partial")
            raise OSError("disk full")
    assert os.listdir(tmp_path) == []


def test_non_chief_trainer_saves_nothing_into_the_run_dir(tmp_path, tiny_model_config):
    trainer = GANTrainer(models.build_generator(tiny_model_config, seed=0),
                         models.build_discriminator(tiny_model_config, seed=0), LossConfig(),
                         TrainConfig(steps=2, checkpoint_every=1, log_every=1), is_chief=False)
    history = trainer.train(tiny_dataset(), run_dir=str(tmp_path))
    assert [h["step"] for h in history] == [1, 2]
    assert not any(files for _, _, files in os.walk(tmp_path)), list(os.walk(tmp_path))
    assert not any("workertemp" in d for _, dirs, _ in os.walk(tmp_path) for d in dirs)


# ---------------------------------------- MirroredStrategy over 2 logical CPUs (subprocess)


def _train_tiny(strategy, callbacks_for=None, steps=3, loss_config=None, **train_kwargs):
    """Trains the tiny DCGAN under ``strategy``; returns the trainer and its history."""
    config = ModelConfig(arch="dcgan", image_size=8, channels=1, latent_dim=4, width=4,
                         discriminator_width=4)
    with strategy.scope():
        generator = models.build_generator(config, seed=0, sync_batch_norm=True)
        discriminator = models.build_discriminator(config, seed=0)
        callbacks = callbacks_for(generator) if callbacks_for else ()
    if callbacks:
        generator = generator.with_network(callbacks[0].model)
    loss_config = loss_config or LossConfig(name="wgan_gp", l2=1e-3)
    trainer = GANTrainer(generator, discriminator, loss_config,
                         TrainConfig(steps=steps, log_every=1, seed=3, **train_kwargs),
                         strategy=strategy, callbacks=callbacks)
    return trainer, trainer.train(tiny_dataset())


def _weights(trainer):
    networks = [trainer.generator.network, trainer.discriminator.network, trainer.ema_network]
    return {f"{i}/{w.name}": w.numpy() for i, net in enumerate(networks) for w in net.weights}


def _pruning_callbacks(schedule):
    import tensorflow_model_optimization as tfmot

    def make(generator):
        # Inside strategy.scope() (the caller's): the mask and step variables become mirrored.
        pruned = tfmot.sparsity.keras.prune_low_magnitude(generator.network,
                                                           pruning_schedule=schedule)
        callback = tfmot.sparsity.keras.UpdatePruningStep()
        callback.set_model(pruned)
        return [callback]

    return make


def _pruning_state(strategy, network):
    """Per pruned kernel: pruning steps, masks and kernels of every replica."""
    state = {}
    for layer in network.layers:
        for kernel, mask, _ in getattr(layer, "pruning_vars", ()):
            state[layer.name] = {
                "steps": [int(v.numpy()) for v in strategy.experimental_local_results(
                    layer.pruning_step)],
                "masks": [v.numpy() for v in strategy.experimental_local_results(mask)],
                "kernels": [v.numpy() for v in strategy.experimental_local_results(kernel)]}
    return state


def mirrored_checks_main(out_dir):
    """Subprocess entry point: trains on 1 device and on 2 mirrored logical CPUs, saves results."""
    import pickle

    import tensorflow_model_optimization as tfmot

    mirrored = distribute.make_strategy("mirrored", num_cpu_devices=2)
    runs = {}
    for name, strategy in [("one_device", tf.distribute.get_strategy()), ("mirrored", mirrored)]:
        trainer, history = _train_tiny(strategy, n_critic=2, ema_decay=0.5)
        runs[name] = {"replicas": strategy.num_replicas_in_sync, "history": history,
                      "weights": _weights(trainer)}
        # DiffAugment parameters are drawn per example in tf.data, R1 is per example: replicas
        # must augment and penalize exactly the examples one device does.
        trainer, history = _train_tiny(strategy, n_critic=2, ema_decay=0.5,
                                       augment=("color", "translation", "cutout"),
                                       loss_config=LossConfig(name="hinge", r1_weight=1.0))
        runs[name + "_augment_r1"] = {"replicas": strategy.num_replicas_in_sync,
                                      "history": history, "weights": _weights(trainer)}
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=10,
                                                    frequency=1)
    trainer, _ = _train_tiny(mirrored, callbacks_for=_pruning_callbacks(schedule))
    state = _pruning_state(mirrored, trainer.generator.network)
    last_step = next(iter(state.values()))["steps"][0]
    runs["pruning"] = {"state": state, "replicas": mirrored.num_replicas_in_sync,
                       "scheduled_sparsity": float(schedule(tf.constant(last_step, tf.int64))[1])}
    with open(os.path.join(out_dir, "mirrored.pkl"), "wb") as f:
        pickle.dump(runs, f)


@pytest.fixture(scope="module")
def mirrored_runs(tmp_path_factory):
    import pickle

    out_dir = tmp_path_factory.mktemp("mirrored")
    code = f"import test_distribute; test_distribute.mirrored_checks_main({str(out_dir)!r})"
    result = _run_python(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out_dir / "mirrored.pkl", "rb") as f:
        return pickle.load(f)


@pytest.mark.slow
def test_two_mirrored_replicas_train_like_one_device_on_the_global_batch(mirrored_runs):
    one, two = mirrored_runs["one_device"], mirrored_runs["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert [h["step"] for h in two["history"]] == [1, 2, 3]
    for expected, got in zip(one["history"], two["history"]):
        for key in ("d_loss", "g_loss", "gradient_penalty", "d_real_logit", "d_fake_logit"):
            np.testing.assert_allclose(got[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=key)
    assert one["weights"].keys() == two["weights"].keys()
    for name, expected in one["weights"].items():
        np.testing.assert_allclose(two["weights"][name], expected, rtol=RTOL, atol=ATOL,
                                   err_msg=name)


@pytest.mark.slow
def test_two_mirrored_replicas_augment_and_apply_r1_like_one_device(mirrored_runs):
    one, two = mirrored_runs["one_device_augment_r1"], mirrored_runs["mirrored_augment_r1"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for expected, got in zip(one["history"], two["history"]):
        for key in ("d_loss", "g_loss", "r1_penalty", "d_real_logit", "d_fake_logit"):
            np.testing.assert_allclose(got[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=key)
    for name, expected in one["weights"].items():
        np.testing.assert_allclose(two["weights"][name], expected, rtol=RTOL, atol=ATOL,
                                   err_msg=name)


@pytest.mark.slow
def test_pruning_under_mirrored_strategy_keeps_replicas_identical_and_follows_schedule(
        mirrored_runs):
    pruning = mirrored_runs["pruning"]
    assert pruning["replicas"] == 2
    assert set(pruning["state"]) == {f"prune_low_magnitude_{n}" for n in
                                     ("project", "up1", "up2", "to_image")}
    for name, layer in pruning["state"].items():
        # tfmot counts training-mode calls: the generator runs in the D and the G update, so
        # 3 trainer steps are 6 pruning steps.
        assert layer["steps"] == [6, 6], name
        np.testing.assert_array_equal(layer["masks"][0], layer["masks"][1], err_msg=name)
        np.testing.assert_array_equal(layer["kernels"][0], layer["kernels"][1], err_msg=name)
        size = layer["masks"][0].size
        for values in (layer["masks"][0], layer["kernels"][0]):  # masks applied by on_epoch_end
            np.testing.assert_allclose(np.mean(values == 0), pruning["scheduled_sparsity"],
                                       atol=1.0 / size, err_msg=name)
    assert 0.6 < pruning["scheduled_sparsity"] < 0.75  # mid-schedule, not the final target


# --------------------------------------- MultiWorkerMirroredStrategy: 2 processes on 127.0.0.1


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(run_dir, steps, timeout=SUBPROCESS_TIMEOUT):
    """Runs experiments/train.py on 2 local workers; returns their (returncode, log) pairs."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, TRAIN, "--strategy=multi_worker", f"--run_dir={run_dir}",
             f"--steps={steps}", *TINY_FLAGS], cwd=REPO, env=_env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = []
    try:
        for process in processes:
            log, _ = process.communicate(timeout=timeout)
            results.append((process.returncode, log))
    finally:
        for process in processes:  # a worker left waiting for a dead peer must not outlive us
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def _checkpoint_step(checkpoint_dir):
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    return int(tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def _assert_no_worker_temp_dirs(run_dir):
    leftovers = [os.path.join(root, d) for root, dirs, _ in os.walk(run_dir) for d in dirs
                 if d.startswith("workertemp_")]
    assert not leftovers


@pytest.mark.slow
def test_two_workers_train_checkpoint_on_the_chief_and_resume(tmp_path):
    from tfgan_opt import PipelineConfig
    from tfgan_opt.pipeline import stages
    from tfgan_opt.core import rundir

    run_dir = tmp_path / "run"
    checkpoints = str(run_dir / "train" / "checkpoints")
    for returncode, log in _run_workers(run_dir, steps=2):
        assert returncode == 0, log[-3000:]
    assert _checkpoint_step(checkpoints) == 2
    assert sorted(os.listdir(run_dir / "train" / "samples")) == ["step_000002.png"]
    _assert_no_worker_temp_dirs(run_dir)
    distributed = rundir.stage_done(str(run_dir), "train")["last_metrics"]

    # The same configuration on one device (this process) reaches the same losses.
    config = json.loads((run_dir / "config.json").read_text())
    one_device = stages.train_gan(PipelineConfig.from_dict(config),
                                  run_dir=str(tmp_path / "one_device"))["last_metrics"]
    for key in ("d_loss", "g_loss", "d_real_logit", "d_fake_logit"):
        np.testing.assert_allclose(distributed[key], one_device[key], rtol=RTOL, atol=ATOL,
                                   err_msg=key)

    for returncode, log in _run_workers(run_dir, steps=4):
        assert returncode == 0, log[-3000:]
        assert "(step 2)" in log and "step 3/4" in log  # both workers resumed, neither restarted
    assert _checkpoint_step(checkpoints) == 4
    assert rundir.stage_done(str(run_dir), "train")["steps"] == 4
    _assert_no_worker_temp_dirs(run_dir)


def test_unreachable_tpu_fails_in_bounded_time_with_one_line(monkeypatch):
    import time

    from tfgan_opt.training import distribute

    def hang(tpu=None):  # what gRPC does for an address that never answers
        time.sleep(30)

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", hang)
    start = time.time()
    with pytest.raises(ConfigError, match=r"no TPU answered at grpc://10\.0\.0\.9:8470 within 1 s"):
        distribute._tpu_strategy("grpc://10.0.0.9:8470", timeout_s=1.0)
    assert time.time() - start < 5
