"""Crash-safe writing of run artifacts.

Every file tfgan_opt writes goes to a temporary name in the same directory and is renamed into place
(``os.replace`` is atomic on POSIX), so a process killed at any moment never leaves a half-written file
under its final name. Directories (SavedModels) are written the same way, one level up.
"""

import contextlib
import io
import json
import os
import shutil
import uuid

import numpy as np

_TMP_PREFIX = ".tmp-"


def _temporary_name(directory, final_name):
    """A fresh ``.tmp-<final_name>.<random>`` path in ``directory``, for a write in progress.

    The final name stays readable in it so a leftover can be traced to what was being written.
    """
    return os.path.join(directory, f"{_TMP_PREFIX}{final_name}.{uuid.uuid4().hex[:12]}")


def with_filename(error, path):
    """``error`` naming ``path`` when the OS did not (``write`` errors carry no file name).

    Callers turn a full disk into "disk full while writing <path>", so the name matters.
    """
    if isinstance(error, OSError) and error.filename is None and error.errno is not None:
        return OSError(error.errno, error.strerror or os.strerror(error.errno), path)
    return error


def _write_all(fd, data):
    view = memoryview(data)
    while view:  # os.write may write fewer bytes than asked (signals, pipes, some filesystems).
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory):
    # Makes the rename itself durable across a power cut; a kill -9 does not need it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path, data):
    """Writes ``data`` to ``path`` so that ``path`` is either the old file or the complete new one.

    Args:
      path: destination file path. Its directory is created if missing.
      data: bytes to write.

    Raises:
      OSError: the write failed (e.g. the disk is full: errno ENOSPC); the error names ``path``,
        ``path`` is left untouched and no temporary file is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = _temporary_name(directory, os.path.basename(path))
    try:
        # 0o666 minus the umask, like open(path, "w"); mkstemp would make every artifact 0o600.
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)  # a delayed-allocation filesystem may report a full disk only here
        finally:
            os.close(fd)
        os.replace(tmp_path, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        named = with_filename(error, path)
        if named is error:
            raise
        raise named from error
    _fsync_directory(directory)


def atomic_write_text(path, text):
    """Writes a UTF-8 text file atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    """Writes ``obj`` as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def read_json(path):
    """Reads a JSON file written by `atomic_write_json`."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def atomic_save_png(path, image):
    """Saves an image array as PNG atomically.

    Args:
      path: destination ``.png`` path.
      image: uint8 array of shape [H, W] or [H, W, C] with C in {1, 3, 4}.
    """
    from PIL import Image  # Pillow is only needed by the callers that write pictures.

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_file(path):
    """Yields a temporary path next to ``path`` that replaces ``path`` when the block succeeds.

    For writers that insist on a file name of their own (``model.save``); the temporary keeps
    ``path``'s extension, which such writers use to choose the format. On error ``path`` is left
    as it was and the temporary is removed.

    Raises:
      OSError: writing failed, or the block wrote no file; an error without a file name (a full
        disk) is given ``path``'s.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_dir = _temporary_name(directory, os.path.basename(path))
    os.mkdir(tmp_dir)
    tmp_path = os.path.join(tmp_dir, os.path.basename(path))
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # a writer that buffered may not have synced
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as error:
        named = with_filename(error, path)
        if named is error:
            raise
        raise named from error
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    _fsync_directory(directory)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory that replaces ``path`` when the block exits without error.

    Used for multi-file artifacts such as SavedModels. An existing ``path`` is replaced; on error
    the temporary directory is removed and ``path`` is left as it was.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.normpath(path))
    tmp_dir = _temporary_name(parent, name)
    os.mkdir(tmp_dir)  # 0o777 minus the umask; mkdtemp would make it 0o700
    try:
        yield tmp_dir
        if os.path.isdir(path):
            # Two renames: a kill between them leaves ``path`` missing (the stage that writes it
            # is not marked done, so a rerun writes it again) but never half-written.
            old = _temporary_name(parent, name)
            os.replace(path, old)
            os.replace(tmp_dir, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_dir, path)
        _fsync_directory(parent)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def sweep_temporaries(directory, skip=()):
    """Removes leftovers of writes that were killed part-way under ``directory``.

    Removes our own ``.tmp-*`` files and folders and CheckpointManager's ``ckpt-N_temp`` folders
    (a SIGKILL during ``CheckpointManager.save`` leaves them, while the previous checkpoint stays
    loadable).

    Args:
      directory: the folder to sweep, recursively.
      skip: name prefixes of subfolders not to enter (another process may be writing there).

    Returns:
      The list of removed paths.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(tuple(skip))]
        for name in list(dirs) + files:
            if name.startswith(_TMP_PREFIX) or (name.startswith("ckpt-") and name.endswith("_temp")):
                full = os.path.join(root, name)
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                    dirs.remove(name)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(full)
                removed.append(full)
    return removed
