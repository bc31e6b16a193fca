"""Magnitude pruning of generators (and discriminators) with tfmot (Zhu & Gupta 2017).

This module wraps, schedules, strips and measures; the training around it
(`tfgan_opt.pipeline.finetune.prune_gan`) runs in one of two modes, ``PruneConfig.mode``:

- ``during``: a GAN is trained from scratch while its generator (and optionally its
  discriminator) is pruned, by `GANTrainer` driven with `pruning_callbacks`.
- ``finetune``: a trained generator is pruned and fine-tuned with
  `training.recovery.RecoveryTrainer`, the dense generator acting as distillation teacher.

`apply_pruning` wraps a COPY of the network: tfmot's ``prune_low_magnitude`` reuses the layers it
is given, so wrapping the original would prune the teacher as well.

Which layers are pruned: every Dense, Conv2D and Conv2DTranspose, except the network's output layer
when it holds under `SMALL_OUTPUT_FRACTION` of the prunable weights (the DCGAN ``to_image`` and the
discriminators' ``logits``). Pruning such a layer saves almost nothing while each zero directly
removes a pixel or logit contribution; the MLP ``to_image`` holds most of its generator's weights,
so it is pruned.
"""

import numpy as np
from absl import logging

from tfgan_opt.compress.allocation import sensitivity_allocation
from tfgan_opt.core.compat import import_tfmot, keras, tfmot_private
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.models.qat_layers import SPARSITY_MASK_SUFFIX
from tfgan_opt.models.surgery import KERNEL_LAYER_TYPES, clone_network, inner_layer, kernel_variable

tfmot = import_tfmot()  # not `import tensorflow_model_optimization`: see core/compat.py
# The public API does not export the wrapper class; isinstance checks need it.
PruneLowMagnitude = tfmot_private("sparsity.keras.pruning_wrapper").PruneLowMagnitude

PRUNABLE_TYPES = KERNEL_LAYER_TYPES
# Layer types tfmot's m-by-n masks are laid out for: the groups run along the input channels of
# TFLite's [out, ..., in] kernel layout. For Conv2DTranspose ([kh, kw, out, in] in Keras) tfmot
# would group along the output channels, a pattern no TFLite kernel can use. A layer with fewer
# than n input channels (the first Conv2D of a grayscale discriminator) gets no m-by-n zeros.
M_BY_N_TYPES = (keras.layers.Dense, keras.layers.Conv2D)
SMALL_OUTPUT_FRACTION = 0.05


def make_pruning_schedule(config, total_steps):
    """Builds the tfmot pruning schedule of a `PruneConfig` for a run of ``total_steps`` steps.

    Steps are trainer (generator) steps: `pruning_callbacks` pins the wrappers' step counter to
    the trainer's global step. A mask update happens at ``begin_step + k * frequency``; with
    ``end_step=-1`` the end is placed on the last such step within the run, so the final update
    reaches ``target_sparsity`` exactly. A frequency longer than the schedule is shortened to it.

    Args:
      config: `PruneConfig`.
      total_steps: steps of the training run the schedule must fit in (>= 1).

    Returns:
      A ``tfmot.sparsity.keras.PolynomialDecay`` or ``ConstantSparsity``.

    Raises:
      ConfigError: the schedule does not fit in ``total_steps``.
    """
    if config.begin_step >= total_steps:
        raise ConfigError(f"begin_step={config.begin_step} must be below the {total_steps} "
                          f"training steps, or no weight is ever pruned")
    if config.end_step > total_steps:
        raise ConfigError(f"end_step={config.end_step} is past the {total_steps} training steps: "
                          f"target_sparsity={config.target_sparsity} would never be reached")
    span = (total_steps if config.end_step == -1 else config.end_step) - config.begin_step
    frequency = min(config.frequency, span)
    if config.end_step == -1:
        span = span // frequency * frequency
    elif span % frequency:
        logging.warning("end_step=%d is not begin_step + a multiple of frequency=%d: the last "
                        "mask update falls short of target_sparsity", config.end_step, frequency)
    end_step = config.begin_step + span
    sparsity = tfmot.sparsity.keras
    if config.schedule == "constant":
        return sparsity.ConstantSparsity(config.target_sparsity, begin_step=config.begin_step,
                                         end_step=end_step, frequency=frequency)
    return sparsity.PolynomialDecay(initial_sparsity=config.initial_sparsity,
                                    final_sparsity=config.target_sparsity,
                                    begin_step=config.begin_step, end_step=end_step,
                                    frequency=frequency)


def prunable_layer_names(network, skip_layers=None):
    """Names of the layers `apply_pruning` wraps (see the module docstring for the rule).

    Args:
      network: Functional keras.Model.
      skip_layers: names to keep dense; None applies the small-output-layer rule.

    Returns:
      A list of layer names, in network order.
    """
    candidates = [layer for layer in network.layers if type(layer) in PRUNABLE_TYPES]
    if skip_layers is None:
        skip_layers = set()
        sizes = [int(np.prod(layer.kernel.shape)) for layer in candidates]
        if candidates and sizes[-1] < SMALL_OUTPUT_FRACTION * sum(sizes):
            skip_layers.add(candidates[-1].name)
    return [layer.name for layer in candidates if layer.name not in set(skip_layers)]


def apply_pruning(model, config, total_steps, skip_layers=None):
    """Wraps the prunable layers of a copy of ``model``'s network with ``prune_low_magnitude``.

    Args:
      model: `Generator` or `Discriminator` with a plain (unpruned) network. Left untouched.
      config: `PruneConfig` (schedule, target, ``block_m_by_n``, allocation; ``sensitivity``
        needs a `Generator`: it measures its output on seeded latents).
      total_steps: steps of the run that will prune it (see `make_pruning_schedule`).
      skip_layers: layer names to keep dense; None: see `prunable_layer_names`.

    Returns:
      A model of the same class around the wrapped copy. Train it with `pruning_callbacks`, then
      `strip_pruning` it.

    Raises:
      ConfigError: ``block_m_by_n`` is set and a layer to prune is not Dense or Conv2D.
      ValueError: the network is already pruned.
    """
    network = model.network
    if pruned_layers(network):
        raise ValueError(f"{network.name} is already wrapped for pruning; strip_pruning it first")
    names = set(prunable_layer_names(network, skip_layers))
    if config.block_m_by_n is not None:
        unsupported = [layer.name for layer in network.layers
                       if layer.name in names and type(layer) not in M_BY_N_TYPES]
        if unsupported:
            raise ConfigError(
                f"block_m_by_n={tuple(config.block_m_by_n)} needs Dense or Conv2D layers, but "
                f"{', '.join(unsupported)} of {network.name} are not (Conv2DTranspose has no "
                f"m-by-n kernel layout in TFLite); use unstructured pruning or arch 'mlp'")
    m_by_n = None if config.block_m_by_n is None else tuple(config.block_m_by_n)
    targets = layer_targets(model, config, names)
    # A layer the allocation leaves dense is not wrapped (a zero-sparsity schedule would only
    # add a mask to carry through QAT).
    schedules = {name: make_pruning_schedule(config.replace(
        target_sparsity=target, initial_sparsity=min(config.initial_sparsity, target)),
        total_steps) for name, target in targets.items() if target > 0}

    def wrap(layer):
        if layer.name not in schedules:
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=schedules[layer.name], sparsity_m_by_n=m_by_n)

    pruned = clone_network(network, wrap)
    logging.info("Pruning %s of %s to sparsity %s%s.", ", ".join(sorted(schedules)), network.name,
                 ", ".join(f"{name} {target:.2f}" for name, target in targets.items()),
                 f" ({m_by_n[0]}:{m_by_n[1]})" if m_by_n else "")
    return model.with_network(pruned)


def layer_targets(model, config, names):
    """{layer name: final sparsity} of the layers ``names`` of ``model`` under ``config``."""
    ordered = [layer.name for layer in model.network.layers if layer.name in names]
    if config.allocation == "uniform":
        return {name: config.target_sparsity for name in ordered}
    if not hasattr(model, "sample_latents"):
        raise ConfigError(f"allocation={config.allocation!r} measures a generator's output; "
                          f"{model.network.name} is not a Generator")
    targets, _ = sensitivity_allocation(model, ordered, config.target_sparsity)
    return targets


def final_pruned_generator(trainer):
    """The trainer's final generator, with the trained generator's masks if it is the EMA copy.

    The EMA averages every weight, masks included, so its own masks are fractional and its
    pruned weights are not zero; the trained generator's masks are the ones that count.
    """
    final = trainer.final_generator()
    if final is not trainer.generator:
        for ema_layer, layer in zip(pruned_layers(final.network),
                                    pruned_layers(trainer.generator.network)):
            for (_, ema_mask, _), (_, mask, _) in zip(ema_layer.pruning_vars, layer.pruning_vars):
                ema_mask.assign(mask)
    return final


class SyncedPruningStep(tfmot.sparsity.keras.UpdatePruningStep):
    """tfmot's ``UpdatePruningStep`` that also pins the wrappers' step to the trainer's step.

    A pruning wrapper advances its own counter on every training-mode call; `GANTrainer` calls the
    generator in training mode ``n_critic + 1`` times per step (and a recovery trainer once more
    for distillation), so on its own the schedule would run that many times too fast.
    """

    def on_train_batch_begin(self, batch, logs=None):
        del logs
        if self.prunable_layers:
            keras.backend.batch_set_value([(layer.pruning_step, int(batch))
                                           for layer in self.prunable_layers])


def pruning_callbacks(*models):
    """Pruning-step callbacks for `GANTrainer(callbacks=...)`, one per pruned model.

    Args:
      *models: `Generator`/`Discriminator` models; those without pruning wrappers are skipped.

    Returns:
      A list of `SyncedPruningStep`, each already ``set_model`` on one network.
    """
    callbacks = []
    for model in models:
        if not pruned_layers(model.network):
            continue
        callback = SyncedPruningStep()
        callback.set_model(model.network)
        callbacks.append(callback)
    return callbacks


def strip_pruning(model):
    """Returns a model of the same class with the pruning wrappers removed (weights stay sparse).

    The masks are applied to the kernels first, so the result is sparse even if the last
    optimizer step moved pruned weights after the trainer's final ``on_epoch_end``. ``model``
    itself keeps its wrappers.
    """
    for layer in pruned_layers(model.network):
        layer.pruning_obj.weight_mask_op()

    def unwrap(layer):
        return layer.layer if isinstance(layer, PruneLowMagnitude) else layer

    # Not tfmot's strip_pruning: it reuses the unwrapped layers, see `clone_network`.
    with tfmot.sparsity.keras.prune_scope():
        return model.with_network(clone_network(model.network, unwrap))


def sparsity_report(model):
    """Per-layer and overall sparsity of the kernels of a model's network.

    Works on plain, pruning-wrapped (the kernel times its mask, i.e. what the layer computes
    with) and QAT-wrapped (the kernel times its sparsity mask, if any) networks. Biases,
    normalization and quantizer variables are not counted.

    Args:
      model: `Generator`/`Discriminator`, or a Functional keras.Model.

    Returns:
      A dict: ``layers`` (a list of dicts with ``layer`` (name), ``weights``, ``zeros``,
      ``sparsity``) and the overall ``weights``, ``zeros`` and ``sparsity``.
    """
    network = getattr(model, "network", model)
    rows = []
    for layer in network.layers:
        kernel = effective_kernel(layer)
        if kernel is None:
            continue
        zeros = int(np.sum(kernel == 0))
        rows.append({"layer": inner_layer(layer).name, "weights": int(kernel.size), "zeros": zeros,
                     "sparsity": zeros / kernel.size})
    weights = sum(row["weights"] for row in rows)
    zeros = sum(row["zeros"] for row in rows)
    return {"layers": rows, "weights": weights, "zeros": zeros,
            "sparsity": zeros / weights if weights else 0.0}


def effective_kernel(layer):
    """The kernel a (possibly wrapped) layer computes with, as numpy; None if it has no kernel."""
    inner = inner_layer(layer)
    if not isinstance(inner, PRUNABLE_TYPES):
        return None
    kernel = kernel_variable(layer).numpy()
    if isinstance(layer, PruneLowMagnitude):
        kernel = kernel * layer.pruning_vars[0][1].numpy()
    mask_name = f"kernel_{SPARSITY_MASK_SUFFIX}"
    for weight in layer.weights:
        if weight.name.split("/")[-1].split(":")[0] == mask_name:
            kernel = kernel * weight.numpy()
    return kernel


def pruned_layers(network):
    """The ``PruneLowMagnitude`` wrappers of a network (empty for an unpruned one)."""
    return [layer for layer in network.layers
            if isinstance(layer, PruneLowMagnitude)]
