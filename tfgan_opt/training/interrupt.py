"""SIGINT / SIGTERM during training: finish the step, save a checkpoint, stop with one line.

Cluster schedulers, ``docker stop`` and preemptible machines send SIGTERM and kill a few seconds
later; Ctrl-C sends SIGINT. Like Keras ``BackupAndRestore`` and TensorFlow's preemption handler,
the trainer saves at the current step, so a rerun resumes where the signal came, not at the last
periodic checkpoint. A second signal stops at once (KeyboardInterrupt), for a save that hangs.
"""

import signal
import threading

from absl import logging

from tfgan_opt.core.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalCatcher:
    """Context manager: while active, SIGINT/SIGTERM only set `received` (main thread only;
    elsewhere Python cannot install handlers and it does nothing). Restores the old handlers."""

    def __init__(self):
        self.received = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False

    def _handle(self, number, frame):
        del frame
        if self.received is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(number).name}")
        self.received = number
        logging.warning("%s received: saving a checkpoint after this step, then stopping.",
                        signal.Signals(number).name)

    def stop(self, step, save=None):
        """Saves (``save()``, unless the step was just checkpointed) and raises `Interrupted`."""
        if save is not None:
            save()
        name = signal.Signals(self.received).name
        raise Interrupted(f"stopped by {name} at step {step}; checkpoint saved, rerun the same "
                          "command to resume", self.received)
