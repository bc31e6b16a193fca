"""Checkpoints and progress of a training run: restore the latest, save (chief and workers), refuse
to save non-finite weights, and the steps/s + ETA of progress lines."""

import os
import re
import time

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.core.errors import NonFiniteError, RunDirError
from tfgan_opt.core.naming import first_line
from tfgan_opt.training import distribute

_CKPT_INDEX = re.compile(r"ckpt-(\d+)\.index")


def _numbered_checkpoints(directory):
    """Paths of the ``ckpt-N`` checkpoints whose files exist in ``directory``, newest first."""
    found = {}
    names = os.listdir(directory) if os.path.isdir(directory) else []
    for name in names:
        match = _CKPT_INDEX.fullmatch(name)
        if match:
            found[int(match.group(1))] = os.path.join(directory, f"ckpt-{match.group(1)}")
    return [found[n] for n in sorted(found, reverse=True)]


def _readable(path):
    """Reads every tensor of a checkpoint (a few MB at most): a truncated or bit-flipped file
    fails here, not halfway through a restore. Returns None or the first line of the error."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 - any failure means "does not restore"
        return first_line(error)
    return None


def restore_latest(checkpoint, directory, max_to_keep):
    """Restores ``checkpoint`` from the newest checkpoint in ``directory`` that restores.

    The ``checkpoint`` index file is only a hint: the ``ckpt-N`` files themselves are scanned, so
    a missing, damaged or stale index never restarts a run from step 0. A damaged newest
    checkpoint (truncated, bit-flipped, garbage index) is skipped with one warning line naming it
    and the one restored instead, and the index is rewritten to list the checkpoints that restore.

    Returns:
      The ``tf.train.CheckpointManager`` over ``directory``.

    Raises:
      RunDirError: checkpoints exist but none restores.
    """
    candidates = _numbered_checkpoints(directory)
    skipped = []
    for path in candidates:
        reason = _readable(path)
        if reason is None:
            try:
                checkpoint.restore(path).expect_partial()
            except Exception as error:  # noqa: BLE001 - e.g. shapes of another configuration
                reason = first_line(error)
        if reason is None:
            if skipped:
                logging.warning("Checkpoint %s does not restore (%s); resuming from %s instead.",
                                skipped[0][0], skipped[0][1], path)
            good = [p for p in candidates if p not in dict(skipped)]
            _write_index(directory, path, [p for p in good if p != path][::-1] + [path])
            break
        skipped.append((path, reason))
    else:
        if candidates:
            raise RunDirError(f"no checkpoint in {directory} restores (newest {skipped[0][0]}: "
                              f"{skipped[0][1]}); restore the files, or pass --overwrite to "
                              "start over")
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)


def _write_index(directory, latest, all_paths):
    state = None
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception:  # noqa: BLE001 - a garbage index is rewritten below
        pass
    if (state is not None and state.model_checkpoint_path == latest
            and list(state.all_model_checkpoint_paths) == all_paths):
        return  # already right: a plain resume writes nothing
    # Relative names, as CheckpointManager writes them: the run directory stays movable.
    tf.compat.v1.train.update_checkpoint_state(
        directory, os.path.basename(latest), [os.path.basename(p) for p in all_paths])


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


def check_resume_step(restored, steps, run_dir):
    """Returns the restored step if training can continue to ``steps`` from it.

    Raises:
      RunDirError: the checkpoint is past ``steps``: training on would be impossible and stopping
        would record ``steps`` beside weights of a later step.
    """
    if restored > steps:
        raise RunDirError(f"{run_dir} holds a checkpoint at step {restored}, past steps={steps}; "
                          f"pass steps >= {restored}, or --overwrite to start over")
    if restored == steps:
        logging.info("Already trained to step %d; nothing to do.", restored)
    return restored


def check_readable(directory):
    """Raises `RunDirError` if ``directory`` holds ``ckpt-N`` checkpoints and none of them reads
    (a quick check before a run directory is touched; `restore_latest` then picks the newest)."""
    candidates = _numbered_checkpoints(directory)
    reasons = [_readable(path) for path in candidates[:1]]
    if candidates and reasons[0] is not None:
        if all(_readable(path) is not None for path in candidates[1:]):
            raise RunDirError(f"no checkpoint in {directory} restores (newest {candidates[0]}: "
                              f"{reasons[0]}); restore the files, or pass --overwrite to start "
                              "over")


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
