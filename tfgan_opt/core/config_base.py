"""The machinery shared by the configuration dataclasses: validation helpers and the JSON round
trip, including what a field means when a configuration recorded before it existed lacks it.
"""

import dataclasses

from tfgan_opt.core.errors import ConfigError

# What a field added after runs were already recorded means when a recorded config.json lacks it:
# the behaviour those runs were trained with, whatever today's default is (issue 18 added these).
ABSENT_FIELDS = {
    "ModelConfig": {"upsample": "transpose", "conditional": False, "num_classes": 0,
                    "acgan_weight": 0.0,  # issue 15: unconditional
                    "class_vectors": "learned"},
    "LossConfig": {"r1_weight": 0.0, "r1_every": 1, "mode_seeking_weight": 0.0},
    "TrainConfig": {"augment": (), "update": "alternating"},
    "PruneConfig": {"allocation": "uniform"},
    # Before fit existed a folder of mixed sizes was refused; every recorded run read one size.
    "DataConfig": {"fit": "crop"},
}
# The run-directory sections (config.json keys) those classes are recorded under.
_SECTION_CLASSES = {"model": "ModelConfig", "loss": "LossConfig", "train": "TrainConfig",
                    "prune": "PruneConfig", "data": "DataConfig"}


def with_absent_fields(recorded):
    """A recorded run configuration with `ABSENT_FIELDS` filled in where a section lacks them.

    Args:
      recorded: the dict of a ``config.json`` (sections ``data``, ``model``, ...; JSON values).

    Returns:
      A new dict; sections that are missing or ``None`` stay as they are.
    """
    filled = dict(recorded)
    for section, class_name in _SECTION_CLASSES.items():
        if isinstance(filled.get(section), dict):
            absent = {k: list(v) if isinstance(v, tuple) else v
                      for k, v in ABSENT_FIELDS[class_name].items()}
            filled[section] = {**absent, **filled[section]}
    return filled


def _check(condition, message):
    if not condition:
        raise ConfigError(message)


def _check_choice(name, value, choices):
    _check(value in choices, f"{name}={value!r} is not one of {', '.join(choices)}")


class _Config:
    """Shared JSON round-trip for the frozen dataclasses below."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        _check(not unknown, f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        absent = ABSENT_FIELDS.get(cls.__name__, {})
        return cls(**{**{k: v for k, v in absent.items() if k not in kwargs}, **kwargs})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
