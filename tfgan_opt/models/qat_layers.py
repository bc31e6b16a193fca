"""Custom objects of quantization-aware generators, registered for (de)serialization.

`SparseKernelQuantizeConfig` gives Dense/Conv2D/Conv2DTranspose an 8-bit per-tensor symmetric
kernel quantizer that multiplies the kernel by a saved 0/1 mask (`SparsityPreservingQuantizer`),
so pruned weights stay exactly zero through QAT (tfmot's prune-preserving scheme rejects
Conv2DTranspose). `InputQuantizeLayer` is tfmot's input quantizer with a build that reloads.
`ClassTableQuantizeConfig` fake-quantizes a conditional generator's class table (an Embedding).
`tfgan_opt.compress.quantize` applies them; this module only defines them, so that loading a saved
QAT generator needs nothing from the compression package.
"""

import tensorflow as tf

from tfgan_opt.core.compat import import_tfmot, keras, tfmot_private

tfmot = import_tfmot()  # not `import tensorflow_model_optimization`: see core/compat.py
# Not exported by tfmot's public API; subclassed below.
QuantizeLayer = tfmot_private("quantization.keras.quantize_layer").QuantizeLayer

# Name suffix of the 0/1 kernel masks that `SparsityPreservingQuantizer` adds.
SPARSITY_MASK_SUFFIX = "sparsity_mask"
_quantizers = tfmot.quantization.keras.quantizers


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

        mask = layer.add_weight(f"{name}_{SPARSITY_MASK_SUFFIX}", shape=tensor_shape,
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


@keras.utils.register_keras_serializable(package="tfgan_opt")
class PassThroughQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No quantizer: for layers that only move values (``DepthToSpace``), whose int8 output
    keeps its input's scale and zero point, as TFLite's int8 kernel requires."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@keras.utils.register_keras_serializable(package="tfgan_opt")
class ClassTableQuantizeConfig(PassThroughQuantizeConfig):
    """8-bit QAT of a conditional generator's class table (a Keras ``Embedding``).

    The table is fake-quantized like a kernel (per tensor, symmetric, narrow range). Its int32
    label input gets no quantizer and its output none either: TFLite's int8 GATHER returns rows at
    the table's own scale. With every tensor under a QAT range the int8 file has no float op; with
    a float table the converter gave the int8 z input another scale than the QAT input quantizer's
    and requantized it before the MUL (DEQUANTIZE -> QUANTIZE).
    tfmot has no Embedding config, and annotating the layer would also put an input quantizer on
    the int32 label, so `tfgan_opt.compress.quantize` wraps it in ``QuantizeWrapperV2`` directly.
    """

    def __init__(self):
        self.weight_quantizer = _quantizers.LastValueQuantizer(
            num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def get_weights_and_quantizers(self, layer):
        return [(layer.embeddings, self.weight_quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.embeddings = quantize_weights[0]


@keras.utils.register_keras_serializable(package="tfgan_opt")
class OutputQuantizeConfig(PassThroughQuantizeConfig):
    """8-bit QAT of a weightless layer tfmot's registry lacks (a conditional generator's Multiply
    of z by its class scale): only the output is fake-quantized, as tfmot does for Add."""

    def get_output_quantizers(self, layer):
        return [_quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                   narrow_range=False)]
