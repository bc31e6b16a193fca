"""Shared plumbing of the experiment scripts: one-line errors and config building from flags."""

import errno
import os
import signal
import sys

# TensorFlow's C++ start-up lines (CUDA probing on a CPU machine, CPU features) bury the one line a
# user needs; keep them out unless the user asks for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging

from tfgan_opt.core.errors import TfganOptError


def _parse_flags(argv):
    # absl prints a multi-line message plus usage for a bad flag; users get one line instead.
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)


def usage_error(message):
    """A one-line error for a flag value the config objects do not check."""
    from tfgan_opt.core.errors import ConfigError
    return ConfigError(message)


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = tuple(os.strerror(code) for code in _DISK_FULL_ERRNOS)


def disk_full_message(error):
    """One line for an error caused by a full disk or an exhausted quota, else None.

    Python writes raise `OSError` (ENOSPC/EDQUOT; tfgan_opt's atomic writes name the file);
    TensorFlow's own writers (checkpoints, summaries) raise an ``OpError`` whose message holds
    the C library's text ("No space left on device") and the file name.
    """
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        where = error.filename or "a file"
        return f"disk full while writing {where}: {error.strerror or os.strerror(error.errno)}"
    text = str(error).strip()
    if type(error).__module__.startswith("tensorflow") and any(t in text for t in _DISK_FULL_TEXTS):
        return f"disk full while writing: {text.splitlines()[0]}"
    return None


def _terminate_as_interrupt(number, frame):
    del frame
    raise KeyboardInterrupt(signal.Signals(number).name)


def guarded_main(main, argv):
    """Calls ``main(argv)``; a user-fixable error becomes one ``error: ...`` line on stderr and a
    non-zero `SystemExit` (the test harness calls this directly, many cases in one process)."""
    try:
        return main(argv)
    except TfganOptError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(getattr(error, "exit_status", 1))
    except KeyboardInterrupt as interrupt:  # outside a training loop (which saves first)
        name = str(interrupt) or "SIGINT"
        sys.stderr.write(f"error: interrupted by {name}; finished stages and checkpoints are kept, "
                         "rerun the same command to resume\n")
        sys.exit(128 + getattr(signal, name, signal.SIGINT))
    except Exception as error:  # noqa: BLE001 - re-raised unless the disk is full
        message = disk_full_message(error)
        if message is None:
            raise
        sys.stderr.write(f"error: {message}; free some space and rerun\n")
        sys.exit(1)


def run(main):
    """Runs ``main`` under absl; a user-fixable error becomes one line on stderr and exit status 1.

    User-fixable: a `TfganOptError`, or a full disk (see `disk_full_message`); every artifact is
    written atomically, so what was written before the failure is intact and a rerun resumes.
    SIGTERM is turned into the same path as Ctrl-C: one line and exit status 143 (the training
    loop itself catches both and saves a checkpoint first, see `tfgan_opt.training.interrupt`).
    """

    def guarded(argv):
        logging.set_verbosity(logging.INFO)
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        return guarded_main(main, argv)

    app.run(guarded, flags_parser=_parse_flags)
