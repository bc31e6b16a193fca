"""Quiets what TensorFlow's C++ code prints straight to the process's stdout/stderr.

The TFLite converter prints lines such as ``fully_quantize: 0, inference_type: 6, ...`` from C++
for every int8 file; Python's ``sys.stdout`` never sees them, and ``TF_CPP_MIN_LOG_LEVEL`` does
not stop them. `quiet_native_output` points file descriptors 1 and 2 at /dev/null around such a
call when ``TF_CPP_MIN_LOG_LEVEL`` asks TensorFlow to be quiet (>= 1), so one switch, the one
TensorFlow users already know, governs both; errors still surface as Python exceptions.
"""

import contextlib
import os
import sys


def native_output_wanted():
    """False when ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more (TensorFlow's own logs hidden)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) < 1
    except ValueError:
        return True


@contextlib.contextmanager
def quiet_native_output():
    """Silences file descriptors 1 and 2 inside the block, unless `native_output_wanted`."""
    if native_output_wanted():
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in (1, 2):
                os.dup2(devnull.fileno(), fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
