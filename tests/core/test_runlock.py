"""The run-directory lock: one process per run, a clear message when held, stale locks taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tfgan_opt.core import runlock
from tfgan_opt.core.errors import RunDirError


def _lock_path(run_dir):
    return os.path.join(run_dir, runlock.LOCK_FILE)


def test_lock_records_pid_and_host_and_is_removed_on_exit(tmp_path):
    run_dir = str(tmp_path / "run")
    with runlock.locked(run_dir) as path:
        with open(path, encoding="utf-8") as f:
            assert json.load(f) == {"host": socket.gethostname(), "pid": os.getpid()}
    assert not os.path.exists(_lock_path(run_dir))


def test_lock_held_by_a_live_process_is_refused_naming_it(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(_lock_path(str(tmp_path)), "w", encoding="utf-8") as f:
            json.dump({"host": socket.gethostname(), "pid": sleeper.pid}, f)
        with pytest.raises(RunDirError, match=rf"in use by process {sleeper.pid} on "):
            runlock.acquire(str(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its owner is dead now: the stale lock is taken over.
    path = runlock.acquire(str(tmp_path))
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["pid"] == os.getpid()


def test_lock_from_another_host_is_refused(tmp_path):
    with open(_lock_path(str(tmp_path)), "w", encoding="utf-8") as f:
        json.dump({"host": "some-other-machine", "pid": 1}, f)
    with pytest.raises(RunDirError, match=r"in use by process 1 on some-other-machine"):
        runlock.acquire(str(tmp_path))


def test_half_written_lock_is_stale(tmp_path):
    with open(_lock_path(str(tmp_path)), "w", encoding="utf-8") as f:
        f.write('{"host": ')
    runlock.release(runlock.acquire(str(tmp_path)))


def test_read_only_run_dir_is_one_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(RunDirError, match=r"cannot lock run directory"):
            runlock.acquire(str(tmp_path))
    finally:
        os.chmod(tmp_path, 0o755)
