"""Shared plumbing of the experiment scripts: one-line errors, a quiet terminal, grouped --help.

Import it before anything that imports TensorFlow: TensorFlow reads its C++ log level once, when
it loads.
"""

import contextlib
import errno
import logging as std_logging
import importlib.abc
import importlib.util
import os
import signal
import sys

# TensorFlow's C++ logs (CUDA probing on a CPU machine, CPU features, oneDNN, the TFLite
# converter's MLIR passes) bury the lines a user needs; keep them out unless --verbose asks for
# them. A value the user exported is kept.
_VERBOSE = any(arg in ("--verbose", "--verbose=true", "--verbose=1") for arg in sys.argv[1:])
if not _VERBOSE:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ logging: errors only
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from absl import app, flags, logging  # noqa: E402 - after the environment is set


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Points file descriptor 2 at /dev/null: C++ code writes there, not to ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Loads ``tensorflow`` with fd 2 silenced. Loading it prints a start-up banner twice (oneDNN,
    "Could not find cuda drivers", "All log messages before absl::InitializeLog()") from C++
    logging that runs before ``TF_CPP_MIN_LOG_LEVEL`` is applied. An import error still raises."""

    def find_spec(self, name, path, target=None):
        del path, target
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _stderr_fd_silenced():
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


if not _VERBOSE and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())

flags.DEFINE_boolean("verbose", False, "Show TensorFlow's own logs (C++ start-up, converter, "
                     "saver and retracing lines); hidden by default.")

from tfgan_opt.core.errors import TfganOptError


_HELP_ARGS = ("--help", "-h", "-?", "--helpshort")


def grouped_help(module_name):
    """The key flags of ``module_name`` (a script), grouped as `_flags.GROUPS` groups them; flags
    of no group (the script's own) come first, under "run"."""
    import _flags  # experiments/ sibling; imported here so _cli stays importable first

    key_flags = {flag.name: flag for flag in flags.FLAGS.get_key_flags_for_module(module_name)}
    grouped = {name: group for group, names in _flags.GROUPS.items() for name in names}
    by_group = {}
    for name in sorted(key_flags):
        by_group.setdefault(grouped.get(name, "run"), []).append(key_flags[name])
    order = ["run", "data", "model", "training", "compression", "export", "evaluation"]
    lines = []
    for group in sorted(by_group, key=lambda g: order.index(g) if g in order else len(order)):
        lines.append(f"\n{group} flags:")
        for flag in by_group[group]:
            prefix = "[no]" if flag.boolean else ""
            default = "" if flag.default is None else f" (default: {flag.default_as_str})"
            lines.append(f"  --{prefix}{flag.name}: {flag.help}{default}")
    return "\n".join(lines)


def _print_help(argv):
    main = sys.modules["__main__"]
    doc = (main.__doc__ or "").strip()
    sys.stdout.write(f"{doc}\n\nUSAGE: {argv[0]} [flags]\n")
    sys.stdout.write(grouped_help(argv[0]) + "\n\n--helpfull lists every flag, absl's included.\n")


def _parse_flags(argv):
    if any(arg in _HELP_ARGS for arg in argv[1:]):
        _print_help(argv)
        sys.exit(0)
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


# WARNING lines that are expected and nothing a user can act on: TensorFlow's note for every
# SavedModel the converter writes (tf_keras layers keep XLA-compiled helpers it does not trace),
# and its retracing note when the evaluation wraps each of a dozen generators in its own
# tf.function (each traces once; TensorFlow counts them together).
_KNOWN_NOISE = ("Found untraced functions such as", "triggered tf.function retracing")


_THIRD_PARTY = tuple(f"{os.sep}{name}{os.sep}" for name in ("tensorflow", "tf_keras",
                                                               "tensorflow_model_optimization"))


def _drop_known_noise(record):
    return not any(text in record.getMessage() for text in _KNOWN_NOISE)


def _drop_third_party_info(record):
    # Parts of TensorFlow log through absl rather than the "tensorflow" logger (the checkpoint
    # saver's "Sharding callback duration" at every save); absl's INFO is tfgan_opt's progress.
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname for part in _THIRD_PARTY)


def quiet_logs(verbose=False):
    """tfgan_opt's progress at INFO; TensorFlow's Python loggers (saver, signature and retracing
    lines) at WARNING, less `_KNOWN_NOISE`, unless ``verbose``. The C++ side is set at import."""
    logging.set_verbosity(logging.INFO)
    level = std_logging.INFO if verbose else std_logging.WARNING
    for name in ("tensorflow", "tf_keras", "h5py", "matplotlib"):
        std_logging.getLogger(name).setLevel(level)
    if not verbose:
        std_logging.getLogger("tensorflow").addFilter(_drop_known_noise)
        std_logging.getLogger("absl").addFilter(_drop_third_party_info)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # too late for TensorFlow if already loaded


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
        quiet_logs(verbose=flags.FLAGS.verbose)
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        return guarded_main(main, argv)

    app.run(guarded, flags_parser=_parse_flags)
