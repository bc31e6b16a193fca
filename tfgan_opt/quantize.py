"""Quantization-aware training (QAT) of generators with tfmot, keeping pruned weights at zero.

Pipeline: `fold_batch_norm` (from `tfgan_opt.fold`; TFLite and tfmot fold Conv2D/Dense -> BN but
not Conv2DTranspose -> BN) -> `apply_qat` (fake-quantized 8-bit weights and activations, Jacob et
al. 2018, with calibrated ranges) -> `quantize_aware_finetune` (a few steps of
`recover.RecoveryTrainer`, so distillation from the float generator keeps quality).

Sparsity-preserving QAT for Conv2DTranspose: tfmot's ``Default8BitPrunePreserveQuantizeScheme``
rejects Conv2DTranspose, so the kernels of Dense, Conv2D and Conv2DTranspose layers get
`SparseKernelQuantizeConfig`, whose `SparsityPreservingQuantizer` multiplies the kernel by a 0/1
mask before fake quantization. The mask is a non-trainable variable set from the kernel's nonzeros
when the wrapper is built, so (1) pruned weights get zero gradient, and Adam or SGD never move them;
(2) the layer computes with exact zeros whatever an optimizer does; (3) the mask is saved and
restored with the model, whereas tfmot's prune-preserve mask is a constant computed from the
weights present at build time (when a saved model is loaded: its random initialization). Weights
are quantized per tensor, symmetric, narrow range, as TFLite's int8 TRANSPOSE_CONV and
FULLY_CONNECTED kernels expect; zero maps exactly to the integer 0.
"""

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from absl import logging
# Not exported by tfmot's public API; subclassed below (tfmot 0.8.1 is pinned).
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import \
    QuantizeLayer

from tfgan_opt import prune
from tfgan_opt.compat import keras
from tfgan_opt.config import RecoveryConfig
from tfgan_opt.fold import fold_batch_norm  # noqa: F401  (public: quantize.fold_batch_norm)
from tfgan_opt.recover import recover

QUANTIZED_KERNEL_TYPES = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)
_quantizers = tfmot.quantization.keras.quantizers


# ------------------------------------------------------------------------------------------------
# Sparsity-preserving quantization config


@keras.utils.register_keras_serializable(package="tfgan_opt")
class SparsityPreservingQuantizer(_quantizers.LastValueQuantizer):
    """Fake-quantizes a kernel after multiplying it by a saved 0/1 mask of its initial nonzeros.

    Args: as ``LastValueQuantizer`` (default: 8 bits, per tensor, symmetric, narrow range).
    """

    def __init__(self, num_bits=8, per_axis=False, symmetric=True, narrow_range=True):
        super().__init__(num_bits=num_bits, per_axis=per_axis, symmetric=symmetric,
                         narrow_range=narrow_range)

    def build(self, tensor_shape, name, layer):
        kernel = getattr(layer.layer, name)

        def nonzero_mask(shape, dtype=None):
            del shape
            return tf.cast(tf.not_equal(kernel, 0), dtype or kernel.dtype)

        mask = layer.add_weight(f"{name}_{prune.SPARSITY_MASK_SUFFIX}", shape=tensor_shape,
                                initializer=nonzero_mask, trainable=False)
        return {**super().build(tensor_shape, name, layer), "sparsity_mask": mask}

    def __call__(self, inputs, training, weights, **kwargs):
        return super().__call__(inputs * weights["sparsity_mask"], training, weights, **kwargs)


@keras.utils.register_keras_serializable(package="tfgan_opt")
class SparseKernelQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """8-bit QAT of a Dense/Conv2D/Conv2DTranspose: kernel and (post-)activation quantized.

    Matches tfmot's default 8-bit scheme (per-tensor symmetric kernel, moving-average activation
    ranges) except that, with ``preserve_sparsity``, the kernel's zeros are kept (see module doc).

    Args:
      preserve_sparsity: use `SparsityPreservingQuantizer` for the kernel.
    """

    def __init__(self, preserve_sparsity=True):
        self.preserve_sparsity = preserve_sparsity
        self.weight_quantizer = (
            SparsityPreservingQuantizer() if preserve_sparsity else
            _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True,
                                           narrow_range=True))
        self.activation_quantizer = _quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False)

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self.weight_quantizer)]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, self.activation_quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.utils.register_keras_serializable(package="tfgan_opt")
class InputQuantizeLayer(QuantizeLayer):
    """tfmot's ``QuantizeLayer`` (fake-quantizes the network input) with a ``build`` that sticks.

    tfmot's ``build`` does not mark the layer built, so loading a ``.keras`` file builds it twice
    (from its build config, then when the graph is rebuilt) and fails with "Layer
    'quantize_layer' expected 5 variables, but received 3".
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.built = True


# ------------------------------------------------------------------------------------------------
# QAT


def apply_qat(generator, preserve_sparsity=True, calibration_samples=256, seed=0):
    """Returns a QAT copy of ``generator``: BN folded, layers wrapped by tfmot's QuantizeWrapper.

    Dense/Conv2D/Conv2DTranspose get `SparseKernelQuantizeConfig`; the other layers (LeakyReLU,
    tanh Activation, Reshape) tfmot's default 8-bit registry, which supports them.

    The quantization ranges are then calibrated (`calibrate_ranges`), so the QAT generator is
    usable (and exportable) before any training.

    Args:
      generator: `Generator`, plain or pruning-wrapped (stripped first), unchanged.
      preserve_sparsity: keep zero weights at zero through QAT.
      calibration_samples: latent vectors used to calibrate the ranges.
      seed: seed of those latents.

    Returns:
      A `Generator` around the quantization-aware network: same call signature, fake-quantized
      float32 outputs. Save it with ``models.save_generator``; export it to int8 TFLite.
    """
    if prune.pruned_layers(generator.network):
        generator = prune.strip_pruning(generator)
    folded = fold_batch_norm(generator)
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def wrap(layer):
        if isinstance(layer, QUANTIZED_KERNEL_TYPES):
            return annotate(layer, quantize_config=SparseKernelQuantizeConfig(preserve_sparsity))
        return annotate(layer)

    annotated = prune.clone_network(folded.network, wrap)
    with tfmot.quantization.keras.quantize_scope():
        network = tfmot.quantization.keras.quantize_apply(annotated)
        network = prune.clone_network(network, _loadable_input_quantizer)
    logging.info("QAT network %s: %d layers wrapped%s.", network.name, len(network.layers),
                 ", sparsity preserved" if preserve_sparsity else "")
    qat = generator.with_network(network)
    calibrate_ranges(qat, folded, folded.sample_latents(calibration_samples, seed))
    return qat


def calibrate_ranges(qat_generator, float_generator, z):
    """Sets the quantization ranges of a QAT generator from its float counterpart's activations.

    tfmot starts activation ranges at [-6, 6] and moves them by an EMA with decay 0.999, so a few
    hundred QAT steps would leave a generator's small activations on a handful of levels. Kernel
    ranges follow the kernels on every training-mode call; one such call sets them.

    Args:
      qat_generator: `Generator` from `apply_qat` (updated in place).
      float_generator: the BN-folded float `Generator` it was made from (same layer names).
      z: float32 [N, latent_dim] calibration latents.
    """
    float_network = float_generator.network
    layers = float_network.layers[1:]
    probe = keras.Model(float_network.inputs, [layer.output for layer in layers])
    ranges = {layer.name: (min(0.0, float(np.min(out))), max(0.0, float(np.max(out))))
              for layer, out in zip(layers, probe(z, training=False))}
    qat_generator(z, training=True)  # LastValueQuantizer: kernel ranges <- current kernels
    for layer in qat_generator.network.layers:
        low, high = ranges.get(prune.inner_layer(layer).name, (None, None))
        for weight in layer.weights if low is not None else ():
            name = weight.name.split("/")[-1].split(":")[0]
            if name in ("post_activation_min", "output_min"):
                weight.assign(low)
            elif name in ("post_activation_max", "output_max"):
                weight.assign(high)


def _loadable_input_quantizer(layer):
    if type(layer) is QuantizeLayer:
        return InputQuantizeLayer.from_config(layer.get_config())
    return layer


def quantize_aware_finetune(generator, teacher, discriminator, dataset, quantize_config,
                            loss_config, recovery_config=None, callbacks=(), run_dir=None,
                            train_config=None):
    """Wraps ``generator`` for QAT and fine-tunes it with distillation from ``teacher``.

    Args:
      generator: `Generator` to quantize (float; plain or pruned), unchanged.
      teacher: float `Generator` to distill (e.g. the dense one, or ``generator`` itself).
      discriminator: `Discriminator` (updated unless ``recovery_config.train_discriminator`` is
        False).
      dataset: repeated ``tf.data.Dataset`` of (images [B, H, W, C] in [-1, 1], labels).
      quantize_config: `QuantizeConfig`: steps, learning rate, ``preserve_sparsity``.
      loss_config: `LossConfig` of the adversarial term.
      recovery_config: `RecoveryConfig` for the loss weights (default: its defaults); its steps
        and learning rate are replaced by ``quantize_config``'s.
      callbacks, run_dir, train_config: as for `recover.recover`.

    Returns:
      The QAT `Generator`; with ``quantize_config.steps == 0``, the BN-folded float generator
      instead (post-training quantization then happens at export).
    """
    if quantize_config.steps == 0:
        logging.info("QuantizeConfig.steps is 0: no QAT, returning the BN-folded float generator.")
        if prune.pruned_layers(generator.network):
            generator = prune.strip_pruning(generator)
        return fold_batch_norm(generator)
    student = apply_qat(generator, preserve_sparsity=quantize_config.preserve_sparsity)
    recovery_config = (recovery_config or RecoveryConfig()).replace(
        steps=quantize_config.steps, learning_rate=quantize_config.learning_rate)
    # In scope: an EMA copy (TrainConfig.ema_decay) clones the wrappers from their configs.
    with tfmot.quantization.keras.quantize_scope():
        return recover(student, teacher, discriminator, dataset, recovery_config, loss_config,
                       callbacks=callbacks, run_dir=run_dir, train_config=train_config)
