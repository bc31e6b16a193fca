"""Distribution strategies by name, and the chief/worker conventions for writing files.

`make_strategy` turns a name into a ``tf.distribute.Strategy``:

* ``default``: one device, no distribution;
* ``mirrored``: ``MirroredStrategy`` over this machine's GPUs (or ``num_cpu_devices`` logical CPU
  devices, to exercise the distributed code path on a CPU-only machine);
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the cluster described by ``TF_CONFIG``;
* ``tpu``: ``TPUStrategy`` over a Cloud TPU.

Build the strategy first thing in a program: logical devices and multi-worker collectives can only
be configured before TensorFlow initializes its runtime.

Under ``MultiWorkerMirroredStrategy`` every worker runs the same program and must take part in
every collective, including the all-reduces hidden in reading synchronized variables (batch-norm
moving statistics) and in saving checkpoints. So every worker computes and saves everything; the
chief writes into the run directory and the others into `worker_temp_dir`, which they delete
(the convention of TensorFlow's multi-worker tutorial). All workers restore from the chief's
checkpoints, so the run directory must be on a filesystem they share.
"""

import contextlib
import os
import shutil
import threading

import tensorflow as tf
from absl import logging

from tfgan_opt.core.config import STRATEGIES
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.core.naming import first_line

# Seconds to wait for a TPU to answer: a reachable one initializes in well under a minute.
TPU_CONNECT_TIMEOUT_S = 60
WORKER_TEMP_PREFIX = "workertemp_"


def make_strategy(name, tpu_address=None, num_cpu_devices=None):
    """Builds a distribution strategy by name.

    Args:
      name: one of ``STRATEGIES``.
      tpu_address: ``tpu`` only: the TPU name or ``grpc://host:port`` address; ``local`` on a TPU
        VM; None reads ``TPU_NAME`` from the environment.
      num_cpu_devices: ``mirrored`` only: split the CPU into this many logical devices and mirror
        over them (for testing on a CPU-only machine); None mirrors over the GPUs, or the CPU.

    Returns:
      A ``tf.distribute.Strategy``.

    Raises:
      ConfigError: unknown name, an option that does not apply to the strategy, TensorFlow already
        initialized when logical CPU devices were asked for, a missing or malformed ``TF_CONFIG``
        for ``multi_worker``, or no TPU reachable for ``tpu``.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy={name!r} is not one of {', '.join(STRATEGIES)}")
    if num_cpu_devices is not None and name != "mirrored":
        raise ConfigError(f"cpu_devices={num_cpu_devices} only applies to strategy 'mirrored', "
                          f"not {name!r}")
    if tpu_address is not None and name != "tpu":
        raise ConfigError(f"tpu={tpu_address!r} only applies to strategy 'tpu', not {name!r}")
    if name == "mirrored":
        strategy = _mirrored_strategy(num_cpu_devices)
    elif name == "multi_worker":
        strategy = _multi_worker_strategy()
    elif name == "tpu":
        strategy = _tpu_strategy(tpu_address)
    else:
        strategy = tf.distribute.get_strategy()
    logging.info("Strategy %s: %d replica(s) in sync, chief: %s", name,
                 strategy.num_replicas_in_sync, is_chief(strategy))
    return strategy


def _mirrored_strategy(num_cpu_devices):
    if num_cpu_devices is None:
        return tf.distribute.MirroredStrategy()
    if num_cpu_devices < 1:
        raise ConfigError(f"cpu_devices={num_cpu_devices} must be positive")
    split_cpu(num_cpu_devices)
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])


def split_cpu(num_devices):
    """Splits the (first) physical CPU into ``num_devices`` logical devices.

    Raises:
      ConfigError: TensorFlow has already initialized its devices with another split.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
    except RuntimeError as error:
        # Device configuration is frozen once TensorFlow has run anything; an identical split made
        # earlier in the same process is fine.
        if len(tf.config.list_logical_devices("CPU")) != num_devices:
            raise ConfigError(
                f"cannot split the CPU into {num_devices} devices: TensorFlow already initialized "
                f"its devices ({error}); build the strategy before any other TensorFlow call"
            ) from error


def _multi_worker_strategy():
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:
        cluster = resolver.cluster_spec().as_dict()
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is not a valid cluster description ({error})") from error
    if not cluster or resolver.task_type is None or resolver.task_id is None:
        raise ConfigError(
            "strategy 'multi_worker' reads the cluster from the TF_CONFIG environment variable, "
            "which is unset or lacks 'cluster' or 'task', e.g. TF_CONFIG='{\"cluster\": "
            "{\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", "
            "\"index\": 0}}'")
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _tpu_strategy(tpu_address, timeout_s=TPU_CONNECT_TIMEOUT_S):
    """Connects to and initializes a Cloud TPU. Not exercised by the tests: they run without one.

    TensorFlow waits without limit for an unreachable address (gRPC retries), so the connection
    runs in a daemon thread and is abandoned after ``timeout_s`` seconds with one line.
    """
    outcome = {}

    def connect():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            outcome["resolver"] = resolver
        except Exception as error:  # noqa: BLE001 - reported below, in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="tpu-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    where = tpu_address or "$TPU_NAME"
    remedy = ("pass --tpu=<name or grpc://host:8470> (--tpu=local on a TPU VM), or choose another "
              "strategy")
    if thread.is_alive():
        raise ConfigError(f"no TPU answered at {where} within {timeout_s:.0f} s; {remedy}")
    if "error" in outcome:
        raise ConfigError(f"no TPU reachable at {where} ({first_line(outcome['error'])}); "
                          f"{remedy}") from outcome["error"]
    return tf.distribute.TPUStrategy(outcome["resolver"])


def task(strategy):
    """This process's ``(task_type, task_id)`` in the cluster; ``(None, None)`` outside one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        # One Python client drives all the TPU cores: it is the only process that writes.
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes checkpoints, summaries and files for ``strategy``.

    The chief is the task of type ``chief`` or, in a cluster without one, worker 0 (TensorFlow's
    convention). A process outside a cluster (default, mirrored, TPU strategies) is the chief.
    """
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_temp_dir(run_dir, strategy):
    """Where this worker writes what the chief writes to ``run_dir``.

    ``run_dir`` itself on the chief; ``<run_dir>/workertemp_<task_id>`` on the other workers, who
    must delete it after writing (see `worker_write_dir`).
    """
    if is_chief(strategy):
        return run_dir
    return _temp_dir(run_dir, strategy)


def _temp_dir(directory, strategy):
    return os.path.join(directory, f"{WORKER_TEMP_PREFIX}{task(strategy)[1] or 0}")


@contextlib.contextmanager
def worker_write_dir(directory, strategy, chief=None):
    """Yields the directory this worker writes to; on non-chiefs, deletes it when done.

    Non-chief workers still have to save (saving takes part in collectives) but must not clobber
    the chief's files, so they write into a fresh temporary directory, removed afterwards even if
    the write failed.

    Args:
      directory: where the chief writes.
      strategy: the ``tf.distribute.Strategy``.
      chief: overrides `is_chief` (None: ask the strategy).
    """
    if is_chief(strategy) if chief is None else chief:
        yield directory
        return
    temp_dir = _temp_dir(directory, strategy)
    shutil.rmtree(temp_dir, ignore_errors=True)  # a leftover of a killed worker
    os.makedirs(temp_dir)
    try:
        yield temp_dir
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
