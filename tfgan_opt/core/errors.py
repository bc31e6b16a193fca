"""Errors a user can fix. Their message is one line that names the bad value and what to do instead.

The experiment scripts print ``str(error)`` alone (no traceback) and exit non-zero for these; any
other exception is a bug and keeps its traceback.
"""


class TfganOptError(Exception):
    """Base class of every user-facing error raised by tfgan_opt."""


class ConfigError(TfganOptError, ValueError):
    """A configuration value is invalid (out of range, unknown name, incompatible combination)."""


class DataError(TfganOptError, ValueError):
    """A dataset source is missing, unreadable, corrupt or inconsistent."""


class RunDirError(TfganOptError):
    """A run directory cannot be used as asked (e.g. it holds a run with another configuration)."""


class NonFiniteError(TfganOptError, FloatingPointError):
    """Training produced a NaN or Inf loss or weight."""


class ModelFileError(TfganOptError, ValueError):
    """A file given as a model (checkpoint, SavedModel, TFLite) is missing or is not one."""


class Interrupted(TfganOptError):
    """A run stopped on SIGINT or SIGTERM after saving what it had; ``exit_status`` is the
    shell's convention for death by that signal (128 + its number)."""

    def __init__(self, message, signal_number):
        super().__init__(message)
        self.exit_status = 128 + signal_number
