"""Every registry is keyed by exactly the names its config validates against.

The configs (tfgan_opt.core.config) hold the names so that a bad flag fails before TensorFlow is
imported; the registries hold the implementations. These tests are what keeps the two one list.
"""

from tfgan_opt import losses, models
from tfgan_opt.compress import prune
from tfgan_opt.compress.channels import CRITERIA
from tfgan_opt.core import config
from tfgan_opt.export import tflite


def test_architectures_registry_matches_config_names():
    assert tuple(models.ARCHITECTURES) == config.ARCHITECTURES


def test_loss_registry_matches_config_names():
    assert tuple(losses.LOSSES) == config.LOSS_NAMES


def test_channel_criteria_registry_matches_config_names():
    assert tuple(CRITERIA) == config.CHANNEL_CRITERIA


def test_export_converters_match_config_formats():
    assert tuple(tflite._CONFIGURE) == tflite.TFLITE_FORMATS
    assert (tflite.SAVED_MODEL_FORMAT,) + tflite.TFLITE_FORMATS == config.EXPORT_FORMATS


def test_every_pruning_schedule_builds():
    for name in config.PRUNING_SCHEDULES:
        prune.make_pruning_schedule(config.PruneConfig(schedule=name), total_steps=100)
