"""Shared plumbing of the experiment scripts: one-line errors and config building from flags."""

import os
import sys

# TensorFlow's C++ start-up lines (CUDA probing on a CPU machine, CPU features) bury the one line a
# user needs; keep them out unless the user asks for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging

from tfgan_opt.errors import TfganOptError


def _parse_flags(argv):
    # absl prints a multi-line message plus usage for a bad flag; users get one line instead.
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)


def usage_error(message):
    """A one-line error for a flag value the config objects do not check."""
    from tfgan_opt.errors import ConfigError
    return ConfigError(message)


def run(main):
    """Runs ``main`` under absl; a `TfganOptError` becomes one line on stderr and exit status 1."""

    def guarded(argv):
        logging.set_verbosity(logging.INFO)
        try:
            return main(argv)
        except TfganOptError as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(1)

    app.run(guarded, flags_parser=_parse_flags)
