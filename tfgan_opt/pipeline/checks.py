"""Checks a command runs before it touches a run directory: can the run be evaluated, do its
checkpoints restore, are its saved networks safe to load. Each fails in seconds with one line."""

import os

from tfgan_opt import data as data_lib
from tfgan_opt import models
from tfgan_opt.core.keras_files import check_keras_file
from tfgan_opt.core.rundir import stage_done
from tfgan_opt.evaluation import feature_spaces
from tfgan_opt.pipeline import variants
from tfgan_opt.training import checkpointing


def check_evaluation(config):
    """The feature space the evaluate stage will use, resolved against the data before any work.

    Returns:
      ``"classifier"``, ``"label_free"`` or ``"inception"``.

    Raises:
      ConfigError, ModelFileError: the run could not be evaluated (see
        `feature_spaces.resolve_feature_space`); DataError: the source cannot be read.
    """
    return feature_spaces.resolve_feature_space(
        config.evaluation, data_lib.source_has_labels(config.data), repr(config.data.source))


def check_train_checkpoints(run_dir, overwrite=False):
    """Before ``run_dir`` is touched: `RunDirError` if training would resume from checkpoints of
    which none restores (unless ``overwrite``, which starts over)."""
    if not overwrite:
        checkpointing.check_readable(os.path.join(run_dir, variants.TRAIN, "checkpoints"))


def check_run_models(run_dir):
    """Checks ``run_dir``'s stage records (each readable) and every saved network of its model
    stages without loading it: a zip ``.keras`` file with known, code-free layers
    (`keras_files.check_keras_file`). Run before the run directory is touched."""
    for stage in variants.STAGES:
        stage_done(run_dir, stage)
    for stage in dict.fromkeys(variants.MODEL_STAGES.values()):
        for kind in ("generator", "discriminator"):
            path = os.path.join(run_dir, stage, f"{kind}.keras")
            if os.path.lexists(path):
                check_keras_file(path, kind, models.custom_objects())
