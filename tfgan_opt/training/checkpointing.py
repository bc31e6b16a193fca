"""Checkpoints and progress of a training run: restore the latest, save (chief and workers), refuse
to save non-finite weights, and the steps/s + ETA of progress lines."""

import time

import numpy as np
import tensorflow as tf

from tfgan_opt.core.errors import NonFiniteError
from tfgan_opt.training import distribute


def restore_latest(checkpoint, directory, max_to_keep):
    """Restores ``checkpoint`` from the newest checkpoint in ``directory`` (if any).

    Returns:
      The ``tf.train.CheckpointManager`` over ``directory``.
    """
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    return manager


def save(manager, step, strategy, is_chief):
    """Saves a checkpoint numbered ``step``.

    Saving takes part in collectives under MultiWorkerMirroredStrategy, so every worker saves;
    non-chiefs into a temporary directory that is deleted right after.
    """
    if is_chief:
        manager.save(checkpoint_number=step)
        return
    with distribute.worker_write_dir(manager.directory, strategy, chief=False) as temp:
        tf.train.CheckpointManager(manager.checkpoint, temp, max_to_keep=1).save(
            checkpoint_number=step)


def check_weights_finite(groups, step, kept_checkpoint):
    """Raises `NonFiniteError` naming the variables that hold a NaN or Inf at ``step``.

    Args:
      groups: list of (group name, float variables), e.g. the networks and optimizer states.
      step: the step about to be checkpointed.
      kept_checkpoint: path of the last good checkpoint (named in the error), or None.
    """
    bad = [f"{group} {variable.name}" for group, variables in groups
           for variable in variables if not np.isfinite(variable.numpy()).all()]
    if not bad:
        return
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise NonFiniteError(
        f"non-finite weights ({shown}) at step {step}; training stopped before saving"
        + (f", last good checkpoint kept: {kept_checkpoint}" if kept_checkpoint else "")
        + " (try a lower learning rate or another loss)")


class Throughput:
    """Steps per second and ETA over the steps done in this process."""

    def __init__(self, start, total):
        self._start_step, self._total, self._start_time = start, total, time.time()

    def update(self, step):
        elapsed = max(time.time() - self._start_time, 1e-9)
        rate = (step - self._start_step) / elapsed
        return rate, (self._total - step) / rate if rate > 0 else float("inf")


def format_seconds(seconds):
    if not np.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def progress_columns(values):
    """The loss columns of a progress line: every ``*loss`` value once, in name order, less a
    ``<x>_adv_loss`` equal to its total ``<x>_loss`` (no other term: the same number twice)."""
    shown = []
    for key in sorted(k for k in values if k.endswith("loss")):
        total = key.replace("_adv_loss", "_loss")
        if key.endswith("_adv_loss") and total in values and values[total] == values[key]:
            continue
        shown.append(f"{key} {values[key]:.4f}")
    return "  ".join(shown)
