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
import tempfile

import numpy as np

_TMP_PREFIX = ".tmp-"


def atomic_write_bytes(path, data):
    """Writes ``data`` to ``path`` so that ``path`` is either the old file or the complete new one.

    Args:
      path: destination file path. Its directory is created if missing.
      data: bytes to write.

    Raises:
      OSError: the write failed (e.g. the disk is full); ``path`` is left untouched and no
        temporary file is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise


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
def atomic_directory(path):
    """Yields a temporary directory that replaces ``path`` when the block exits without error.

    Used for multi-file artifacts such as SavedModels. An existing ``path`` is replaced; on error
    the temporary directory is removed and ``path`` is left as it was.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=parent)
    try:
        yield tmp_dir
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=parent)
            os.replace(path, os.path.join(old, "old"))
            os.replace(tmp_dir, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_dir, path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def sweep_temporaries(directory):
    """Removes leftovers of writes that were killed part-way under ``directory``.

    Removes our own ``.tmp-*`` files and folders and CheckpointManager's ``ckpt-N_temp`` folders
    (a SIGKILL during ``CheckpointManager.save`` leaves them, while the previous checkpoint stays
    loadable).

    Returns:
      The list of removed paths.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
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
