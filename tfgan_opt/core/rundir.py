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

CONFIG_FILE = "config.json"
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

    Args:
      run_dir: the run directory path.
      config: JSON-able dict of nested configuration dicts (e.g. ``{"data": {...}, ...}``).
      overwrite: delete an existing run directory whose configuration differs, and start over.
      remedy: what the refusal tells the user to do instead.

    Returns:
      True if an existing run with the same configuration is resumed, False for a new run.

    Raises:
      RunDirError: ``run_dir`` holds another configuration or foreign files, and not overwrite.
    """
    config_path = os.path.join(run_dir, CONFIG_FILE)
    # A directory holding only its config.json (a run that failed before any stage started, e.g.
    # on a missing dataset) has nothing to lose: it is reused for the new configuration.
    if os.path.isdir(run_dir) and set(os.listdir(run_dir)) - {CONFIG_FILE}:
        if not os.path.exists(config_path):
            if not overwrite:
                raise RunDirError(f"run directory {run_dir} exists and is not a tfgan_opt run "
                                  f"(no config.json); {remedy}")
            shutil.rmtree(run_dir)
        else:
            # A setting added after this run was recorded means what the run was trained with,
            # so a command that would now switch it on is another configuration, not a resume.
            old = with_absent_fields(read_json(config_path))
            changed = _changed_keys(old, config)
            if not changed or changed <= RESUMABLE_CHANGES:
                sweep_temporaries(run_dir)
                atomic_write_json(config_path, {**old, **config})
                return True
            if not overwrite:
                shown = ", ".join(sorted(changed)[:4]) + (" ..." if len(changed) > 4 else "")
                raise RunDirError(f"run directory {run_dir} holds a run with another configuration "
                                  f"({shown} differ); {remedy}")
            shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_json(config_path, config)
    return False


def _changed_keys(old, new):
    # Only settings both configurations name can conflict: a later command that adds sections
    # (compress.py on a trained run) or names fewer (train.py on a pipeline run) continues it.
    old_flat, new_flat = _flatten(old), _flatten(new)
    return {k for k in old_flat.keys() & new_flat.keys() if old_flat[k] != new_flat[k]}


def stage_done(run_dir, stage):
    """The record a completed ``stage`` left in ``run_dir``, or None if it has not completed."""
    path = os.path.join(run_dir, stage, STAGE_FILE)
    return read_json(path) if os.path.exists(path) else None


def mark_stage_done(run_dir, stage, record):
    """Records that ``stage`` completed; written last, atomically, so it implies every output."""
    atomic_write_json(os.path.join(run_dir, stage, STAGE_FILE), record)
