"""A new run directory that starts from another run's trained GAN (to compress it another way).

A run directory records one configuration, so compressing a trained run a second way with other
settings needs a second run directory. `fork_trained_run` makes one: it copies the trained stage
and records only the data, model, loss and training sections of the source configuration (a
pipeline run's config.json also holds its compression sections, which would conflict).
"""

import os
import shutil

from tfgan_opt.core.artifacts import atomic_write_json, read_json
from tfgan_opt.core.errors import RunDirError
from tfgan_opt.core.pipeline_config import TRAIN_SECTIONS, PipelineConfig
from tfgan_opt.core.rundir import CONFIG_FILE, STAGE_FILE, read_run_config, stage_done
from tfgan_opt.pipeline.variants import TRAIN

_COPYING = ".tmp-" + TRAIN  # swept like every other .tmp- leftover


def fork_trained_run(source_dir, run_dir):
    """Starts ``run_dir`` from the trained GAN of ``source_dir``; a no-op if it already was.

    Args:
      source_dir: a run directory whose train stage is done (made by train.py or pipeline.py).
      run_dir: a new (missing or empty) directory, or one this function started before.

    Returns:
      True if ``run_dir`` was created now, False if it had already been started.

    Raises:
      RunDirError: ``source_dir`` holds no trained GAN, or ``run_dir`` holds something else.
    """
    if os.path.abspath(source_dir) == os.path.abspath(run_dir):
        raise RunDirError(f"--from_run and --run_dir are both {run_dir}; give a new --run_dir")
    if stage_done(run_dir, TRAIN) is not None:
        return False  # started before: the caller's prepare_run_dir checks the configuration
    record = stage_done(source_dir, TRAIN)
    if record is None:
        raise RunDirError(f"{source_dir} holds no trained GAN ({TRAIN}/{STAGE_FILE} is missing)")
    leftovers = set(os.listdir(run_dir)) - {CONFIG_FILE, _COPYING} if os.path.isdir(run_dir) else ()
    if leftovers:
        raise RunDirError(f"run directory {run_dir} already holds files ({sorted(leftovers)[0]}, "
                          "...); --from_run starts a new one: choose another --run_dir")
    config = read_json(os.path.join(source_dir, CONFIG_FILE))
    copying = os.path.join(run_dir, _COPYING)
    shutil.rmtree(copying, ignore_errors=True)  # a copy a kill interrupted
    os.makedirs(run_dir, exist_ok=True)
    source_train, train_dir = os.path.join(source_dir, TRAIN), os.path.join(run_dir, TRAIN)
    shutil.copytree(source_train, copying, ignore=shutil.ignore_patterns(".tmp-*"))
    # The record's paths name the source run; point them at the copy.
    moved = {key: value.replace(source_train, train_dir, 1) if isinstance(value, str) else value
             for key, value in record.items()}
    atomic_write_json(os.path.join(copying, STAGE_FILE), moved)
    atomic_write_json(os.path.join(run_dir, CONFIG_FILE),
                      {name: config[name] for name in TRAIN_SECTIONS if name in config})
    os.replace(copying, train_dir)  # last: a train/ folder means the copy is whole
    return True


def load_run_config(run_dir):
    """The `PipelineConfig` recorded in ``<run_dir>/config.json`` (sections it does not record,
    e.g. the compression ones of a train-only run, take their defaults)."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise RunDirError(f"{run_dir} is not a tfgan_opt run directory (no config.json)")
    recorded = read_run_config(run_dir)
    missing = [name for name in TRAIN_SECTIONS if name not in recorded]
    if missing:
        raise RunDirError(f"{path} records no {', '.join(missing)} configuration; "
                          "it was not made by experiments/train.py or pipeline.py")
    try:
        return PipelineConfig.from_dict(recorded)
    except (TypeError, AttributeError, KeyError) as error:  # a hand-edited or damaged record
        raise RunDirError(f"{path} does not hold a valid configuration ({type(error).__name__}: "
                          f"{str(error)[:150]}); restore it or choose a new --run_dir") from error
