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


def compress_model(generator, dataset, run_dir, *, discriminator=None, overwrite=False,
                   without_discriminator=None, **sections):
    """Compresses your own Keras generator: also callable as ``tfgan_opt.compress(...)``.

    Runs channel pruning (on the network's channel dependency graph), weight pruning, QAT,
    TFLite export, verification, benchmarks, metrics and the report into a new run directory.

    Args:
      generator: Sequential or Functional tf_keras model, z [B, latent_dim] -> images
        [B, H, H, C] in [-1, 1]; the latent size and image shape are read from it.
      dataset: a `DataConfig`, or a source string (``"idx:<path>"``, ``"folder:<dir>"``, a TFDS
        name, ...) read at the generator's image size and channels (batch size 64).
      run_dir: new run directory (the same call again resumes).
      discriminator: optional keras.Model images -> logits.
      overwrite: replace a run directory that holds another run.
      without_discriminator: recovery when no discriminator is given: ``"distill"`` (None: the
        default; distillation from ``generator`` only) or ``"fresh"`` (a fresh discriminator
        trained alongside).
      **sections: `PipelineConfig` sections by name: ``channels`` (`ChannelPruneConfig`, default
        none), ``prune`` (`PruneConfig` or None), ``recovery``, ``quantize``, ``export``,
        ``evaluation``, ``loss``, ``train``; the others take their defaults.

    Returns:
      Path of ``<run_dir>/report.md``.
    """
    # Deferred: the pipeline imports TensorFlow; `import tfgan_opt` must stay cheap.
    from tfgan_opt.pipeline import byo

    return byo.compress(generator, dataset, run_dir, discriminator=discriminator,
                        overwrite=overwrite, without_discriminator=without_discriminator,
                        **sections)


def __getattr__(name):
    if name == "compress":  # the subpackage, also callable (see compress_model)
        import importlib

        return importlib.import_module("tfgan_opt.compress")
    raise AttributeError(f"module 'tfgan_opt' has no attribute {name!r}")
