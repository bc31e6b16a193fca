"""Quantization-aware training (QAT) of generators with tfmot, keeping pruned weights at zero.

Pipeline: `fold_batch_norm` (from `tfgan_opt.compress.fold`; TFLite and tfmot fold Conv2D/Dense ->
BN but not Conv2DTranspose -> BN) -> `apply_qat` (fake-quantized 8-bit weights and activations,
Jacob et al. 2018, with calibrated ranges). The fine-tune that follows (distillation from the float
generator) is `tfgan_opt.pipeline.finetune.quantize_aware_finetune`.

Sparsity-preserving QAT for Conv2DTranspose: tfmot's ``Default8BitPrunePreserveQuantizeScheme``
rejects Conv2DTranspose, so the kernels of Dense, Conv2D and Conv2DTranspose layers get
`tfgan_opt.models.qat_layers.SparseKernelQuantizeConfig`, whose `SparsityPreservingQuantizer` multiplies the kernel by a 0/1
mask before fake quantization. The mask is a non-trainable variable set from the kernel's nonzeros
when the wrapper is built, so (1) pruned weights get zero gradient, and Adam or SGD never move them;
(2) the layer computes with exact zeros whatever an optimizer does; (3) the mask is saved and
restored with the model, whereas tfmot's prune-preserve mask is a constant computed from the
weights present at build time (when a saved model is loaded: its random initialization). Weights
are quantized per tensor, symmetric, narrow range, as TFLite's int8 TRANSPOSE_CONV and
FULLY_CONNECTED kernels expect; zero maps exactly to the integer 0.
"""

import numpy as np
from absl import logging

from tfgan_opt.compress import prune
from tfgan_opt.compress.fold import fold_batch_norm
from tfgan_opt.core.compat import import_tfmot, keras, tfmot_private
from tfgan_opt.models.qat_layers import (ClassTableQuantizeConfig, InputQuantizeLayer,
                                         OutputQuantizeConfig, PassThroughQuantizeConfig,
                                         SparseKernelQuantizeConfig)
from tfgan_opt.models.sr import DepthToSpace
from tfgan_opt.models.surgery import KERNEL_LAYER_TYPES, clone_network, inner_layer

tfmot = import_tfmot()  # not `import tensorflow_model_optimization`: see core/compat.py
# Not exported by tfmot's public API; isinstance checks need it.
QuantizeLayer = tfmot_private("quantization.keras.quantize_layer").QuantizeLayer
QuantizeWrapperV2 = tfmot.quantization.keras.QuantizeWrapperV2


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
      float32 outputs. Save it with ``models.save_network``; export it to int8 TFLite.
    """
    if prune.pruned_layers(generator.network):
        generator = prune.strip_pruning(generator)
    folded = fold_batch_norm(generator)
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def wrap(layer):
        if isinstance(layer, keras.layers.Embedding):
            return layer  # wrapped below (`_quantize_class_table`)
        if isinstance(layer, KERNEL_LAYER_TYPES):
            return annotate(layer, quantize_config=SparseKernelQuantizeConfig(preserve_sparsity))
        if isinstance(layer, DepthToSpace):
            return annotate(layer, quantize_config=PassThroughQuantizeConfig())
        if type(layer) is keras.layers.Multiply:  # not in tfmot's registry
            return annotate(layer, quantize_config=OutputQuantizeConfig())
        return annotate(layer)

    annotated = _quantize_class_table(clone_network(folded.network, wrap))
    with tfmot.quantization.keras.quantize_scope():
        network = tfmot.quantization.keras.quantize_apply(annotated)
        network = clone_network(network, _loadable_input_quantizer)
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
    layers = [layer for layer in float_network.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(float_network.inputs, [layer.output for layer in layers])
    ranges = {layer.name: (min(0.0, float(np.min(out))), max(0.0, float(np.max(out))))
              for layer, out in zip(layers, probe(z, training=False))}
    qat_generator(z, training=True)  # LastValueQuantizer: kernel ranges <- current kernels
    for layer in qat_generator.network.layers:
        low, high = ranges.get(inner_layer(layer).name, (None, None))
        for weight in layer.weights if low is not None else ():
            name = weight.name.split("/")[-1].split(":")[0]
            if name in ("post_activation_min", "output_min"):
                weight.assign(low)
            elif name in ("post_activation_max", "output_max"):
                weight.assign(high)


def _quantize_class_table(network):
    """Wraps a conditional generator's class table (Embedding) in a ready QuantizeWrapperV2.

    Not annotated: ``quantize_apply`` gives every network input that feeds an annotated layer an
    input quantizer, which cannot take the int32 label. It keeps a ready wrapper as it is.
    The other layers are reused (``network`` is a throwaway clone).
    """
    def wrap(layer):
        if isinstance(layer, keras.layers.Embedding):
            return QuantizeWrapperV2(layer, ClassTableQuantizeConfig())
        return layer

    if not any(isinstance(layer, keras.layers.Embedding) for layer in network.layers):
        return network
    return keras.models.clone_model(network, clone_function=wrap)


def _loadable_input_quantizer(layer):
    if type(layer) is QuantizeLayer:
        return InputQuantizeLayer.from_config(layer.get_config())
    return layer
