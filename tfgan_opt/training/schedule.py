"""A recovery schedule that matches the damage: steps from how much was removed, a decaying
learning rate.

The step count is ``steps + round(steps_per_removed * removed)``, ``removed`` being the fraction of
the generator taken away (MACs for channel pruning, weights for weight pruning): a cut of 75% of
the MACs gets more fine-tuning than a cut of 10%. The learning rate follows a cosine from its
starting value to ``final_lr_fraction`` of it over the recovery (Loshchilov & Hutter 2017), set
before every step from the step index alone, so a resumed recovery continues the same curve.
"""

import math

from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import LR_SCHEDULES, _check


def damage_steps(recovery_config, removed):
    """Recovery steps for a compression that removed the fraction ``removed`` in [0, 1].

    Args:
      recovery_config: `RecoveryConfig`; ``steps`` is the floor, ``steps_per_removed`` the steps
        added per unit of removed fraction (0: ``steps``, the fixed count).
      removed: fraction of the MACs or weights removed.

    Returns:
      int >= 0.
    """
    _check(0.0 <= removed <= 1.0, f"removed={removed} must be a fraction in [0, 1]")
    return recovery_config.steps + int(round(recovery_config.steps_per_removed * removed))


def learning_rate_at(schedule, base_lr, step, total_steps, final_fraction=0.0):
    """The learning rate of step ``step`` (0-based) out of ``total_steps``."""
    _check(schedule in LR_SCHEDULES, f"lr_schedule={schedule!r} is not one of "
                                     f"{', '.join(LR_SCHEDULES)}")
    if schedule == "constant" or total_steps <= 1:
        return base_lr
    progress = min(max(step / (total_steps - 1), 0.0), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (final_fraction + (1.0 - final_fraction) * cosine)


class LearningRateDecay(keras.callbacks.Callback):
    """Sets the learning rate of ``optimizers`` before every trainer step.

    A callback of `GANTrainer` (driven by hand: ``on_train_batch_begin(step)``), so the rate is a
    function of the global step and a resumed run picks up the curve where it stopped.

    Args:
      optimizers: dict name -> (keras optimizer, base learning rate).
      schedule: one of ``LR_SCHEDULES``.
      total_steps: steps of the run.
      final_fraction: learning rate at the last step, as a fraction of the base.
    """

    def __init__(self, optimizers, schedule, total_steps, final_fraction=0.0):
        super().__init__()
        self.optimizers = dict(optimizers)
        self.schedule = schedule
        self.total_steps = total_steps
        self.final_fraction = final_fraction

    def on_train_batch_begin(self, batch, logs=None):
        del logs
        for optimizer, base_lr in self.optimizers.values():
            optimizer.learning_rate.assign(learning_rate_at(
                self.schedule, base_lr, int(batch), self.total_steps, self.final_fraction))
