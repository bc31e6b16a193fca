"""Bring your own generator: compress a Keras model trained outside tfgan_opt.

The user's networks are written into a new run directory as its ``train`` stage; from there the
usual stages run (`stages.compress_run`): channel pruning on the network's dependency graph,
weight pruning, QAT, export, verification, benchmarks, metrics and the report.

Without a discriminator, ``without_discriminator`` chooses the recovery (measured side by side in
BUILD_NOTES.md, issue 14): ``distill`` (the default) fine-tunes by distillation from the user's
generator only (`RecoveryConfig.distillation_only`: no discriminator is trained or run); ``fresh``
trains a fresh discriminator (the ``dcgan`` one of `tfgan_opt.models`, or the ``mlp`` one for
image sides that are not a multiple of 4) alongside, adding the adversarial and feature terms.
Either way the ``taylor`` channel criterion, which ranks channels by a trained discriminator's
loss, is replaced by ``activation``.
"""

import os

from absl import logging

from tfgan_opt import models
from tfgan_opt.core import rundir
from tfgan_opt.core.config import DataConfig, ModelConfig
from tfgan_opt.core.config_base import _check_choice
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.core.images import save_image_grid
from tfgan_opt.core.pipeline_config import PipelineConfig
from tfgan_opt.core.recovery_config import WITHOUT_DISCRIMINATOR_MODES
from tfgan_opt.pipeline import stages, variants


def _model_config(network):
    """The `ModelConfig` describing a user generator network's input and output."""
    if len(network.input_shape) != 2:
        raise ConfigError(f"generator {network.name} takes inputs of shape "
                          f"{network.input_shape[1:]}; the compression pipeline needs a latent "
                          f"generator z [B, latent_dim] -> images (channel-prune an image-to-image "
                          f"model with tfgan_opt.compress.channels.channel_prune)")
    shape = network.output_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] not in (1, 3):
        raise ConfigError(f"generator {network.name} outputs {shape[1:]}; the pipeline needs "
                          f"square images with 1 or 3 channels")
    return ModelConfig(arch="dcgan" if shape[1] % 4 == 0 else "mlp", image_size=int(shape[1]),
                        channels=int(shape[3]), latent_dim=int(network.input_shape[-1]))


DEFAULT_WITHOUT_DISCRIMINATOR = "distill"


def user_pipeline_config(generator_network, data, *, without_discriminator=None, **sections):
    """The `PipelineConfig` of a user generator: its model section read from the generator, its
    ``data`` (`DataConfig`) checked against it, the other ``sections`` as given.

    Args:
      generator_network: Functional keras.Model z -> images.
      data: `DataConfig`.
      without_discriminator: None if the user gives a discriminator; else one of
        `WITHOUT_DISCRIMINATOR_MODES`: ``distill`` makes ``recovery`` distillation only,
        ``fresh`` keeps it (a fresh discriminator is trained alongside). Either way a ``taylor``
        channel criterion becomes ``activation`` (no trained discriminator to rank with).
      **sections: the other `PipelineConfig` sections.

    Raises:
      ConfigError: the generator is not a latent generator of square images, the dataset
        yields images of another size or channel count, or an unknown mode.
    """
    model = _model_config(generator_network)
    if (data.image_size, data.channels) != (model.image_size, model.channels):
        raise ConfigError(
            f"the generator makes {model.image_size}x{model.image_size}x{model.channels} images "
            f"but the dataset yields {data.image_size}x{data.image_size}x{data.channels}: set "
            f"image_size={model.image_size} channels={model.channels}")
    prune = sections.get("prune")
    if prune is not None and prune.mode == "during":
        raise ConfigError("prune mode 'during' trains a new GAN; a given generator is pruned "
                          "in mode 'finetune'")
    config = _without_discriminator(PipelineConfig(data=data, model=model, **sections),
                                    without_discriminator)
    # A user's model comes without its training history (no checkpoints to continue), so there is
    # no dense same-steps reference: the report compares with the model as given.
    return config.replace(evaluation=config.evaluation.replace(same_steps_reference=False))


def _without_discriminator(config, mode):
    if mode is None:
        return config
    _check_choice("without_discriminator", mode, WITHOUT_DISCRIMINATOR_MODES)
    if config.channels is not None and config.channels.criterion == "taylor":
        logging.info("No discriminator given: channels are ranked by 'activation', not 'taylor' "
                     "(which needs a trained discriminator's loss).")
        config = config.replace(channels=config.channels.replace(criterion="activation"))
    if mode == "distill":
        config = config.replace(recovery=config.recovery.distillation_only())
    return config


def import_user_models(generator_network, discriminator_network, config, *, run_dir, source):
    """Writes the user's networks as ``<run_dir>/train`` (the stage the compression stages read).

    Args:
      generator_network: Functional keras.Model z -> images in [-1, 1].
      discriminator_network: Functional keras.Model images -> logits, or None (a fresh one is
        built from ``config.model``).
      config: `PipelineConfig` from `user_pipeline_config`.
      run_dir: the run directory (prepared by the caller).
      source: where the generator came from (recorded).

    Returns:
      The stage record.
    """
    done = rundir.stage_done(run_dir, variants.TRAIN)
    if done:
        return done
    generator = models.Generator(generator_network, name="generator")
    if discriminator_network is None:
        # With distillation-only recovery this one is never trained or run: the stages still
        # hand a discriminator from stage to stage.
        logging.info("No discriminator given: recovery %s.",
                     f"trains a fresh {config.model.arch} discriminator alongside"
                     if config.recovery.train_discriminator else "is distillation only")
        discriminator = models.build_discriminator(config.model, seed=config.train.seed)
    else:
        discriminator = models.Discriminator(discriminator_network, name="discriminator")
    stage_dir = os.path.join(run_dir, variants.TRAIN)
    os.makedirs(stage_dir, exist_ok=True)
    record = {"generator": os.path.join(stage_dir, "generator.keras"),
              "discriminator": os.path.join(stage_dir, "discriminator.keras"),
              "imported_from": source, "fresh_discriminator": discriminator_network is None,
              "steps": 0, "samples": os.path.join(stage_dir, "samples.png")}
    save_image_grid(record["samples"], generator.generate(stages.SAMPLE_GRID), scale=3)
    models.save_network(generator, record["generator"])
    models.save_network(discriminator, record["discriminator"])
    rundir.mark_stage_done(run_dir, variants.TRAIN, record)
    return record


def compress_user_model(generator, data, *, run_dir, discriminator=None, source="memory",
                        overwrite=False, without_discriminator=None, **sections):
    """Compresses a user's generator into a new run directory: the whole compression pipeline.

    Args:
      generator: Sequential or Functional tf_keras model, z [B, latent_dim] -> images
        [B, H, H, C] in [-1, 1].
      data: `DataConfig` yielding H x H x C images.
      run_dir: a new run directory (a rerun with the same config resumes).
      discriminator: optional keras.Model images -> logits [B, 1] (its penultimate activation
        drives feature distillation).
      source: description of the generator's origin, recorded in the run.
      overwrite: replace a run directory that holds another run.
      without_discriminator: recovery without ``discriminator``: ``distill`` (None: the
        default) or ``fresh`` (see `user_pipeline_config`).
      **sections: the other `PipelineConfig` sections (channels, prune, recovery, ...).

    Returns:
      Path of ``<run_dir>/report.md``.

    Raises:
      ConfigError: ``without_discriminator`` given with a discriminator, or see
        `user_pipeline_config`.
    """
    network = models.wrap_user_model(generator, "generator", source)
    critic = (None if discriminator is None
              else models.wrap_user_model(discriminator, "discriminator"))
    config = user_pipeline_config(network, data, without_discriminator=without_mode(
        critic is not None, without_discriminator), **sections)
    rundir.prepare_run_dir(run_dir, config.to_dict(), overwrite=overwrite,
                           remedy="to compress another model, pick a new run_dir")
    import_user_models(network, critic, config, run_dir=run_dir, source=source)
    return stages.compress_run(config, run_dir=run_dir)


def without_mode(has_discriminator, requested=None):
    """The ``without_discriminator`` mode of a run: None with a discriminator, else
    ``requested`` or the default.

    Raises:
      ConfigError: a mode was requested although a discriminator is given.
    """
    if has_discriminator:
        if requested is not None:
            raise ConfigError(f"without_discriminator={requested!r} applies only when no "
                              "discriminator is given")
        return None
    return requested or DEFAULT_WITHOUT_DISCRIMINATOR


def compress(generator, dataset, run_dir, *, discriminator=None, overwrite=False,
             without_discriminator=None, **sections):
    """`compress_user_model` with ``dataset`` a `DataConfig` or a source string (read at the
    generator's image size and channel count); see ``tfgan_opt.compress_model``."""
    if isinstance(dataset, str):
        shape = generator.output_shape
        dataset = DataConfig(source=dataset, image_size=int(shape[1]), channels=int(shape[-1]))
    return compress_user_model(generator, dataset, run_dir=run_dir, discriminator=discriminator,
                               overwrite=overwrite, without_discriminator=without_discriminator,
                               **sections)


__all__ = ["DEFAULT_WITHOUT_DISCRIMINATOR", "compress", "compress_user_model",
           "import_user_models", "user_pipeline_config", "without_mode"]
