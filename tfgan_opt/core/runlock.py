"""A lock on a run directory, so two processes never train or compress the same run at once.

The lock is a file created atomically (``O_CREAT | O_EXCL``) inside the run directory, holding the
owner's host and pid. A lock left by a process that was killed (same host, pid no longer alive) is
stale and taken over; a live owner's lock is refused with one line naming it. A lock held from
another host cannot be checked from here and is refused too (delete the file if that host's run
is dead).
"""

import contextlib
import json
import os
import socket

from tfgan_opt.core.errors import RunDirError

LOCK_FILE = ".tfgan_opt.lock"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _read_owner(path):
    try:
        with open(path, encoding="utf-8") as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}  # half-written by a killed process, or damaged: no live owner to protect


def _create(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)


def _is_stale(owner):
    pid = owner.get("pid")
    if not isinstance(pid, int) or owner.get("host") != socket.gethostname():
        return not isinstance(pid, int)  # unreadable: stale; another host's: cannot tell
    return pid != os.getpid() and not _pid_alive(pid)


def acquire(run_dir):
    """Takes the lock on ``run_dir`` (created if missing); returns the lock file's path.

    Raises:
      RunDirError: another live process holds it, or ``run_dir`` cannot be written.
    """
    path = os.path.join(run_dir, LOCK_FILE)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir} is a file, not a directory; choose another "
                          "--run_dir")
    try:
        os.makedirs(run_dir, exist_ok=True)
        for _ in range(3):
            try:
                _create(path)
                return path
            except FileExistsError:
                owner = _read_owner(path)
                if not _is_stale(owner):
                    raise RunDirError(
                        f"run directory {run_dir} is in use by process {owner.get('pid')} on "
                        f"{owner.get('host')} (lock file {path}); wait for it to finish, or "
                        "delete the lock file if that process is gone") from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)  # stale: its owner was killed
    except (PermissionError, NotADirectoryError, FileExistsError, IsADirectoryError) as error:
        raise RunDirError(f"cannot lock run directory {run_dir} ({error.strerror or error}); "
                          "it must be a writable directory") from error
    raise RunDirError(f"cannot take the lock {path}: it keeps being recreated")


def release(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def locked(run_dir, enabled=True):
    """Holds the lock on ``run_dir`` for the body (``enabled=False``: a no-op, e.g. non-chief
    workers of a cluster, which only read the chief's run directory)."""
    if not enabled:
        yield None
        return
    path = acquire(run_dir)
    try:
        yield path
    finally:
        release(path)
