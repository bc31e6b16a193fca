"""`RecoveryConfig`: the recovery fine-tune after each compression stage (its own module because
`core.config` is at the size limit)."""

import dataclasses
from typing import Dict, Optional

from tfgan_opt.core.config import LR_SCHEDULES, _check, _check_choice, _Config

# How a user's generator given without its discriminator recovers (`pipeline.byo`): ``distill``,
# distillation from the generator only (no discriminator is trained or run); ``fresh``, a fresh
# discriminator trained alongside (adversarial and feature terms too).
WITHOUT_DISCRIMINATOR_MODES = ("distill", "fresh")

@dataclasses.dataclass(frozen=True)
class RecoveryConfig(_Config):
    """Fine-tune of a compressed generator: distillation from the dense one plus adversarial loss.

    Attributes:
      steps: fine-tune steps.
      learning_rate: Adam learning rate of the student generator (and the discriminator).
      distill_weight: weight of L1(student(z), teacher(z)) on images.
      feature_distill_weight: weight of L1 between discriminator features of student and teacher.
      adversarial_weight: weight of the generator's adversarial loss (0: pure distillation).
      train_discriminator: keep updating the discriminator during recovery.
      layer_distill_weight, layer_distill_layers: inner-activation MSE (`training.feature_distill`).
      steps_per_removed, lr_schedule, final_lr_fraction, ema_decay: see `training.schedule`.
    Later fields default to the old behaviour (an old config.json resumes as it was made)."""

    steps: int = 500
    learning_rate: float = 1e-4
    distill_weight: float = 10.0
    feature_distill_weight: float = 1.0
    adversarial_weight: float = 1.0
    train_discriminator: bool = True
    layer_distill_weight: float = 0.0
    layer_distill_layers: Optional[Dict[str, float]] = None
    steps_per_removed: int = 0
    lr_schedule: str = "constant"
    final_lr_fraction: float = 0.0
    ema_decay: float = 0.0

    def __post_init__(self):
        _check(self.learning_rate > 0, f"learning_rate={self.learning_rate} must be positive")
        weights = {f"layer_distill_layers[{k!r}]": v for k, v in (self.layer_distill_layers or {}).items()}
        for name, value in {**weights, **{n: getattr(self, n) for n in ("steps", "distill_weight",
                "feature_distill_weight", "adversarial_weight", "layer_distill_weight",
                "steps_per_removed")}}.items():
            _check(isinstance(value, (int, float)) and value >= 0, f"{name}={value!r} must be >= 0")
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("final_lr_fraction", "ema_decay"):
            _check(0 <= getattr(self, name) < 1, f"{name}={getattr(self, name)} must be in [0, 1)")

    def distillation_only(self):
        """This config with no adversarial or discriminator-feature term and the discriminator
        frozen: the recovery never trains or runs a discriminator (image and inner-feature
        distillation only)."""
        return self.replace(adversarial_weight=0.0, feature_distill_weight=0.0,
                            train_discriminator=False)
