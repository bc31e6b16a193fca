"""Run directories: one folder per experiment that records its configuration and its stages.

A run directory holds ``config.json`` (the configuration it was made with). Rerunning with the same
configuration resumes; a different value of a setting is refused with `RunDirError` unless the
caller asks to overwrite. A command that adds sections (compressing a trained run) extends it. Each completed pipeline stage writes ``<stage>/stage.json``, so a rerun skips it.
"""

import os
import shutil

from tfgan_opt.core.artifacts import atomic_write_json, read_json, sweep_temporaries
from tfgan_opt.core.config_base import with_absent_fields
from tfgan_opt.core.errors import RunDirError
from tfgan_opt.core.pipeline_config import COMPRESS_SECTIONS, TRAIN_SECTIONS
from tfgan_opt.core.runlock import LOCK_FILE

CONFIG_FILE = "config.json"
# Every top-level section a tfgan_opt config.json may hold (evaluate.py writes "evaluate"; image-to-image runs "i2i").
RUN_SECTIONS = TRAIN_SECTIONS + COMPRESS_SECTIONS + ("evaluate", "i2i")  # i2i: issue 16
STAGE_FILE = "stage.json"
# Keys that may change between reruns without starting over: extending a run is a resume.
RESUMABLE_CHANGES = frozenset({"train.steps", "train.log_every"})
_SECTION = "<section>"


def _flatten(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            # The section itself is a key too, so a section switched off (``"prune": null``,
            # --noprune) conflicts with one that was on instead of sharing no key with it.
            flat[name] = _SECTION
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def prepare_run_dir(run_dir, config, overwrite=False,
                    remedy="choose a new --run_dir or pass --overwrite"):
    """Creates or reopens ``run_dir`` for ``config``.

    Only a directory this project made (see `is_run_dir`) is ever deleted, and never the working
    directory, one of its parents, the home directory or a filesystem root. A rerun that changes
    nothing writes nothing. ``train.steps`` may grow (a resume) but not shrink: the checkpoints
    may already be past the smaller count.

    Args:
      run_dir: the run directory path.
      config: JSON-able dict of nested configuration dicts (e.g. ``{"data": {...}, ...}``).
      overwrite: delete an existing run directory whose configuration differs, and start over.
      remedy: what the refusal tells the user to do instead.

    Returns:
      True if an existing run with the same configuration is resumed, False for a new run.

    Raises:
      RunDirError: ``run_dir`` holds another configuration or foreign files (and not overwrite),
        is not a directory, or its config.json is damaged.
    """
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir} is a file, not a directory; choose another "
                          "--run_dir")
    # A directory holding only its config.json (a run that failed before any stage started, e.g.
    # on a missing dataset) has nothing to lose: it is reused for the new configuration.
    if os.path.isdir(run_dir) and set(os.listdir(run_dir)) - {CONFIG_FILE, LOCK_FILE}:
        if not os.path.exists(config_path):
            if not overwrite:
                raise RunDirError(f"run directory {run_dir} exists and is not a tfgan_opt run "
                                  f"(no config.json); {remedy}")
            _remove_run(run_dir)
        else:
            # A setting added after this run was recorded means what the run was trained with,
            # so a command that would now switch it on is another configuration, not a resume.
            recorded = read_run_config(run_dir)
            old = with_absent_fields(recorded)
            changed = _changed_keys(old, config)
            shrinks = _steps_shrink(run_dir, old, config)
            if (not changed or changed <= RESUMABLE_CHANGES) and not shrinks:
                sweep_temporaries(run_dir)
                if {**recorded, **config} != recorded:  # a rerun that changes nothing writes nothing
                    atomic_write_json(config_path, {**recorded, **config})
                return True
            if shrinks and not overwrite and changed <= RESUMABLE_CHANGES:
                raise RunDirError(shrinks)
            if not overwrite:
                shown = ", ".join(sorted(changed)[:4]) + (" ..." if len(changed) > 4 else "")
                raise RunDirError(f"run directory {run_dir} holds a run with another configuration "
                                  f"({shown} differ); {remedy}")
            _remove_run(run_dir)
    elif _holds_config(run_dir, config):
        return False
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_json(config_path, config)
    return False


def _holds_config(run_dir, config):
    try:
        return read_run_config(run_dir) == config
    except RunDirError:  # a damaged config.json in an otherwise empty directory: replaced
        return False


def _steps_shrink(run_dir, old, new):
    """Why ``new`` may not resume ``old`` because it trains fewer steps, or None."""
    old_steps = (old.get("train") or {}).get("steps")
    new_steps = (new.get("train") or {}).get("steps")
    if isinstance(old_steps, int) and isinstance(new_steps, int) and new_steps < old_steps:
        return (f"run directory {run_dir} was set up for {old_steps} training steps; "
                f"steps={new_steps} would record fewer steps than its checkpoints may hold; pass "
                f"steps >= {old_steps}, or --overwrite to start over")
    return None


def read_run_config(run_dir):
    """The dict in ``<run_dir>/config.json``; `RunDirError` if it is damaged or not a run's."""
    path = os.path.join(run_dir, CONFIG_FILE)
    record = _read_record(path, "run configuration")
    if not record or not set(record) <= set(RUN_SECTIONS):
        unknown = sorted(set(record) - set(RUN_SECTIONS))[:3]
        raise RunDirError(f"{path} is not a tfgan_opt run configuration (unexpected keys "
                          f"{unknown}), so {run_dir} is not a tfgan_opt run; nothing in it is "
                          "touched: choose a new --run_dir")
    return record


def _read_record(path, what):
    try:
        record = read_json(path)
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError included
        reason = error.strerror if isinstance(error, OSError) else type(error).__name__
        raise RunDirError(f"cannot read {what} {path} ({reason}); restore it or choose a new "
                          "--run_dir") from error
    if not isinstance(record, dict):
        raise RunDirError(f"{what} {path} holds a {type(record).__name__}, not a JSON object; "
                          "restore it or choose a new --run_dir")
    return record


def is_run_dir(path):
    """Whether ``path`` is a directory this project made: its config.json (runs from before
    this check was added included) holds only tfgan_opt configuration sections."""
    try:
        read_run_config(path)
    except RunDirError:
        return False
    return os.path.isdir(path)


def _protected(path):
    real = os.path.realpath(path)
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    return (real == home or real == os.path.dirname(real) or os.path.ismount(real)
            or cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep))


def _remove_run(run_dir):
    """Deletes a run directory's contents (its lock excepted) for --overwrite."""
    if _protected(run_dir):
        raise RunDirError(f"refusing to delete {run_dir}: it is the working directory, one of its "
                          "parents, the home directory or a filesystem root; choose a new "
                          "--run_dir")
    if not is_run_dir(run_dir):
        raise RunDirError(f"refusing to delete {run_dir}: it was not made by tfgan_opt (no "
                          "tfgan_opt config.json); choose a new --run_dir")
    for name in os.listdir(run_dir):
        if name == LOCK_FILE:
            continue
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _changed_keys(old, new):
    # Only settings both configurations name can conflict: a later command that adds sections
    # (compress.py on a trained run) or names fewer (train.py on a pipeline run) continues it.
    old_flat, new_flat = _flatten(old), _flatten(new)
    return {k for k in old_flat.keys() & new_flat.keys() if old_flat[k] != new_flat[k]}


def stage_done(run_dir, stage):
    """The record a completed ``stage`` left in ``run_dir``, or None if it has not completed."""
    path = os.path.join(run_dir, stage, STAGE_FILE)
    return _read_record(path, f"stage '{stage}' record") if os.path.exists(path) else None


def mark_stage_done(run_dir, stage, record):
    """Records that ``stage`` completed; written last, atomically, so it implies every output."""
    atomic_write_json(os.path.join(run_dir, stage, STAGE_FILE), record)
