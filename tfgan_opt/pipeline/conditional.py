"""Class-conditional runs (issue 15): the class count from the labels, checked before any work."""

import numpy as np

from tfgan_opt import data as data_lib
from tfgan_opt.core.errors import ConfigError


def resolve_classes(config):
    """``config`` with ``model.num_classes`` read from the source's labels (max label + 1).

    An unconditional config, or one whose ``num_classes`` is already set, is returned unchanged.
    Reads the source's labels, so the entry points call it before the run directory is touched.

    Raises:
      ConfigError: the model is conditional and the source has no labels, or a label is outside
        ``[0, num_classes)``.
      DataError: the source cannot be read.
    """
    model = config.model
    if not model.conditional:
        return config
    labels = data_lib.source_labels(config.data)
    source = repr(config.data.source)
    if labels is None:
        raise ConfigError(f"conditional=True needs class labels but {source} has none; use a "
                          "labelled source (IDX with its labels file, NPZ with y, a folder with "
                          "one subfolder per class, TFDS) or drop --conditional")
    low, high = int(np.min(labels)), int(np.max(labels))
    if low < 0 or (model.num_classes and high >= model.num_classes):
        raise ConfigError(f"{source} has labels {low}..{high}, outside 0..{model.num_classes - 1}")
    if model.num_classes:
        return config
    if high < 1:
        raise ConfigError(f"conditional=True needs at least 2 classes but {source} has only 1")
    return config.replace(model=model.replace(num_classes=high + 1))


def class_names(config, num_classes):
    """The names of a conditional run's classes (for model cards and reports)."""
    return data_lib.class_names(config.data, num_classes)
