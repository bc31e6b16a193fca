"""`PipelineConfig`: the one configuration object of a pipeline run, one stage config per section.

A run directory's config.json is this object's `to_dict` (train.py records the training sections,
compress.py adds the compression ones).
"""

import dataclasses
from typing import Optional

from tfgan_opt.core.config import (ChannelPruneConfig, DataConfig, EvaluationConfig, ExportConfig,
                                   LossConfig, ModelConfig, PruneConfig, QuantizeConfig,
                                   TrainConfig, _check)
from tfgan_opt.core.recovery_config import RecoveryConfig


# Sections of a run's config.json, in pipeline order; `PipelineConfig` holds one of each.
TRAIN_SECTIONS = ("data", "model", "loss", "train")
COMPRESS_SECTIONS = ("channels", "prune", "recovery", "quantize", "export", "evaluation")
_SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig,
                  "train": TrainConfig, "channels": ChannelPruneConfig, "prune": PruneConfig,
                  "recovery": RecoveryConfig, "quantize": QuantizeConfig, "export": ExportConfig,
                  "evaluation": EvaluationConfig}
# Sections that may be switched off (None): channel pruning and weight pruning.
_OPTIONAL_SECTIONS = ("channels", "prune")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything one run of the pipeline needs: one config per stage.

    The entry points (`tfgan_opt.pipeline.stages.run_pipeline`, ``compress_run``, ``train_gan``)
    take this one object. ``channels`` None skips channel pruning; ``prune`` None skips weight
    pruning (QAT of the dense or channel-pruned generator).
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    channels: Optional[ChannelPruneConfig] = None
    prune: Optional[PruneConfig] = dataclasses.field(default_factory=PruneConfig)
    recovery: RecoveryConfig = dataclasses.field(default_factory=RecoveryConfig)
    quantize: QuantizeConfig = dataclasses.field(default_factory=QuantizeConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)

    def __post_init__(self):
        for name, kind in _SECTION_TYPES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_SECTIONS:
                continue
            _check(isinstance(value, kind), f"PipelineConfig.{name} must be a {kind.__name__}, "
                                            f"got {type(value).__name__}")
        _check((self.data.image_size, self.data.channels)
               == (self.model.image_size, self.model.channels),
               f"the dataset yields {self.data.image_size}x{self.data.image_size}x"
               f"{self.data.channels} images but the model makes {self.model.image_size}x"
               f"{self.model.image_size}x{self.model.channels}; use the same image size and "
               "channels")
        check_update(self.loss, self.train)

    def to_dict(self, sections=None):
        """The JSON-able record of ``sections`` (default: all), as written to config.json."""
        return {name: None if getattr(self, name) is None else getattr(self, name).to_dict()
                for name in sections or tuple(_SECTION_TYPES)}

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a (possibly partial) record; absent sections take defaults."""
        unknown = sorted(set(values) - set(_SECTION_TYPES))
        _check(not unknown, f"unknown PipelineConfig section(s): {', '.join(unknown)}")
        return cls(**{name: None if section is None else _SECTION_TYPES[name].from_dict(section)
                      for name, section in values.items()})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def check_update(loss_config, train_config):
    """Raises `ConfigError` if ``train_config.update`` cannot train ``loss_config``'s objective.

    The simultaneous step differentiates one discriminator pass for both networks, so it has no
    place for a penalty that needs its own passes (WGAN-GP, R1) or for clipping between updates.
    """
    if train_config.update != "simultaneous":
        return
    needs = [reason for reason, present in (
        ("the wgan_gp gradient penalty", loss_config.name == "wgan_gp"),
        ("wasserstein weight clipping", loss_config.name == "wasserstein"),
        (f"r1_weight={loss_config.r1_weight}", loss_config.r1_weight > 0)) if present]
    _check(not needs, f"update='simultaneous' cannot train with {' and '.join(needs)}; use "
           f"update='alternating' (or drop {' and '.join(needs)})")
