"""The configuration of structured channel pruning (`tfgan_opt.compress.channels`), re-exported by
`tfgan_opt.core.config` beside the other stages' configurations."""

import dataclasses
from typing import Dict, Optional, Union

from tfgan_opt.core.config_base import _check, _check_choice, _Config
from tfgan_opt.core.names import CHANNEL_CRITERIA


@dataclasses.dataclass(frozen=True)
class ChannelPruneConfig(_Config):
    """Structured channel pruning of a generator (`tfgan_opt.channels`).

    Exactly one of ``ratio`` and ``macs_target`` is set.

    Attributes:
      ratio: fraction of the output channels removed from every prunable layer, in [0, 1); or a
        dict layer name -> such a fraction (layers not named keep all their channels).
      macs_target: fraction of the dense generator's multiply-accumulates to keep, in (0, 1]; a
        uniform ratio meeting it is searched for.
      criterion: channel importance, one of ``CHANNEL_CRITERIA``.
      recalibrate: restore the activation statistics of the layers that lost input channels
        (`channels.recalibrate_channels`: BN re-estimation, else mean/std matching).
      calibration_samples: latent vectors the data-aware criteria (``activation``, ``taylor``)
        and the recalibration average over.
      seed: seed of those latents.
      min_channels: channels every pruned layer keeps at least.
      channel_multiple: kept channel counts are rounded up to a multiple of this (SIMD-friendly
        widths for TFLite kernels), capped at the layer's width.
    """

    ratio: Union[float, Dict[str, float], None] = None
    macs_target: Optional[float] = None
    criterion: str = "l1"
    recalibrate: bool = True
    calibration_samples: int = 256
    seed: int = 0
    min_channels: int = 1
    channel_multiple: int = 1

    def __post_init__(self):
        _check((self.ratio is None) != (self.macs_target is None),
               f"set exactly one of ratio={self.ratio} and macs_target={self.macs_target}")
        ratios = self.ratio.items() if isinstance(self.ratio, dict) else [("ratio", self.ratio)]
        for name, value in ratios if self.ratio is not None else ():
            _check(isinstance(value, (int, float)) and 0 <= value < 1,
                   f"{name}={value!r} must be a fraction of channels to remove, in [0, 1)")
        if self.macs_target is not None:
            _check(0 < self.macs_target <= 1, f"macs_target={self.macs_target} must be the "
                   f"fraction of MACs to keep, in (0, 1]")
        _check_choice("criterion", self.criterion, CHANNEL_CRITERIA)
        _check(self.calibration_samples >= 1,
               f"calibration_samples={self.calibration_samples} must be positive")
        _check(self.min_channels >= 1, f"min_channels={self.min_channels} must be positive")
        _check(self.channel_multiple >= 1,
               f"channel_multiple={self.channel_multiple} must be positive")
