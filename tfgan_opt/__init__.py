"""tfgan_opt: train GANs, then prune, quantize and export their generators for edge devices.

This module only re-exports the public API; importing it does no work.
"""

from tfgan_opt.core.config import (ChannelPruneConfig, DataConfig, EvaluationConfig, ExportConfig,
                                   LossConfig, ModelConfig, PruneConfig, QuantizeConfig,
                                   TrainConfig)
from tfgan_opt.core.recovery_config import RecoveryConfig
from tfgan_opt.core.pipeline_config import PipelineConfig
from tfgan_opt.core.errors import (ConfigError, DataError, ModelFileError, NonFiniteError,
                                   RunDirError, TfganOptError)

__version__ = "0.1.0"
