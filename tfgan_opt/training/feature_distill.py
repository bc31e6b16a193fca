"""Intermediate-feature distillation: a student generator's inner activations matched to the
teacher's.

As in GAN Compression (Li et al. 2020, eq. 3): for each matched layer t,

    L_feat = sum_t w_t * mean |f_t(S_t(z)) - T_t(z)|^2

with S_t, T_t the student's and teacher's activations for the same z, and f_t a learnable 1x1
convolution (Dense for flat features) from the student's width to the teacher's, present only where
the widths differ (a channel-pruned student). The adapters train with the student and are not part
of the exported generator. They start from the least-squares map between the two activations on a
calibration batch, so the loss is meaningful from the first step of a short recovery.
"""

import numpy as np
import tensorflow as tf

from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.models.surgery import inner_layer

# Layers whose outputs are the "inner activations": what the next block reads.
_FEATURE_TYPES = (keras.layers.LeakyReLU, keras.layers.ReLU, keras.layers.ELU,
                  keras.layers.Activation, keras.layers.Reshape)


def feature_layer_names(network):
    """Names of the inner feature maps a generator network exposes, input to output.

    The outputs of activation and Reshape layers other than the output tail (the output layer and
    the Reshape/Activation layers right before it); if any of them is
    a 4-D feature map, only the 4-D ones (a DCGAN's flat projection is also its first feature map,
    reshaped, and a Dense adapter over it would be larger than the generator).
    """
    excluded = _output_tail(network)
    layers = [layer for layer in network.layers
              if isinstance(inner_layer(layer), _FEATURE_TYPES)
              and inner_layer(layer).name not in excluded]
    spatial = [layer for layer in layers if len(layer.output.shape) == 4]
    return [inner_layer(layer).name for layer in (spatial or layers)]


def _output_tail(network):
    """Names of the output layer and the Reshape/Activation layers right before it (the image
    nonlinearity and reshapes: the image itself, which the image L1 already matches)."""
    tail, layer = set(), network.layers[-1]
    while True:
        tail.add(inner_layer(layer).name)
        inbound = layer.inbound_nodes[0].inbound_layers if layer.inbound_nodes else []
        inbound = inbound if isinstance(inbound, list) else [inbound]
        if len(inbound) != 1 or not isinstance(inner_layer(inbound[0]), (
                keras.layers.Reshape, keras.layers.Activation)):
            return tail
        layer = inbound[0]


def _layers_by_name(network):
    return {inner_layer(layer).name: layer for layer in network.layers}


def _feature_model(network, names):
    """network's inputs -> [image, *activations of ``names``], sharing network's layers."""
    layers = _layers_by_name(network)
    return keras.Model(network.inputs, [network.outputs[0]] + [layers[n].output for n in names])


def _least_squares_adapter(student_values, teacher_values, ridge=1e-3):
    """Kernel [c_s, c_t] and bias [c_t] of the affine map best taking student to teacher values."""
    x = student_values.reshape(-1, student_values.shape[-1]).astype(np.float64)
    y = teacher_values.reshape(-1, teacher_values.shape[-1]).astype(np.float64)
    x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    gram = x1.T @ x1 + ridge * len(x) * np.eye(x1.shape[1])
    solution = np.linalg.solve(gram, x1.T @ y)
    return solution[:-1].astype(np.float32), solution[-1].astype(np.float32)


class FeatureDistiller(tf.Module):
    """Student/teacher feature models and the width adapters between them.

    Args:
      student: `Generator` (plain, pruning- or QAT-wrapped); its layers are shared, not copied.
      teacher: `Generator` whose activations are the targets (never updated).
      layer_weights: dict layer name -> weight, or None for every layer of
        `feature_layer_names` (teacher) at weight 1.
      calibration_samples: latents the adapters' least-squares start is fitted on.
      seed: seed of those latents.

    Raises:
      ConfigError: a named layer is missing in the student or the teacher, or its spatial shape
        differs between them.
    """

    def __init__(self, student, teacher, layer_weights=None, calibration_samples=256, seed=0):
        super().__init__(name="feature_distiller")
        names = (list(layer_weights) if layer_weights
                 else feature_layer_names(teacher.network))
        self.weights_by_layer = {n: float((layer_weights or {}).get(n, 1.0)) for n in names}
        student_layers, teacher_layers = (_layers_by_name(student.network),
                                          _layers_by_name(teacher.network))
        for name in names:
            if name not in student_layers or name not in teacher_layers:
                raise ConfigError(f"feature distillation layer {name!r} is not in both the "
                                  f"student and the teacher generator")
            s_shape, t_shape = student_layers[name].output.shape, teacher_layers[name].output.shape
            if s_shape[1:-1] != t_shape[1:-1] or len(s_shape) != len(t_shape):
                raise ConfigError(f"feature distillation layer {name!r} has shape "
                                  f"{tuple(s_shape[1:])} in the student but "
                                  f"{tuple(t_shape[1:])} in the teacher")
        self.names = names
        self.student_model = _feature_model(student.network, names)
        self.teacher_model = _feature_model(teacher.network, names)
        z = teacher.sample_latents(calibration_samples, seed)
        student_values = self.student_model(z, training=False)[1:]
        teacher_values = self.teacher_model(z, training=False)[1:]
        self.adapters = [self._make_adapter(name, s.numpy(), t.numpy())
                         for name, s, t in zip(names, student_values, teacher_values)]

    @staticmethod
    def _make_adapter(name, student_values, teacher_values):
        """None where the widths agree, else a 1x1 Conv2D (4-D) or Dense (2-D) fitted by least
        squares."""
        c_s, c_t = student_values.shape[-1], teacher_values.shape[-1]
        if c_s == c_t:
            return None
        kernel, bias = _least_squares_adapter(student_values, teacher_values)
        if student_values.ndim == 4:
            adapter = keras.layers.Conv2D(c_t, 1, name=f"adapt_{name}")
            adapter.build((None, None, None, c_s))
            adapter.set_weights([kernel[None, None], bias])
        else:
            adapter = keras.layers.Dense(c_t, name=f"adapt_{name}")
            adapter.build((None, c_s))
            adapter.set_weights([kernel, bias])
        return adapter

    @property
    def adapter_variables(self):
        """The trainable variables of the adapters (empty if every width matches)."""
        return [v for adapter in self.adapters if adapter is not None
                for v in adapter.trainable_variables]

    def student_outputs(self, z, training):
        """(image [B, H, W, C], [activation per layer]) of the student, one forward pass."""
        outputs = self.student_model(z, training=training)
        return outputs[0], list(outputs[1:])

    def teacher_outputs(self, z):
        """(image, [activation per layer]) of the teacher in inference mode, gradients stopped."""
        outputs = [tf.stop_gradient(o) for o in self.teacher_model(z, training=False)]
        return outputs[0], outputs[1:]

    def per_layer_losses(self, student_features, teacher_features):
        """Unweighted mean squared error per example, per layer: {name: float32 [B]}."""
        losses = {}
        for name, adapter, s, t in zip(self.names, self.adapters, student_features,
                                       teacher_features):
            mapped = s if adapter is None else adapter(s)
            diff = tf.square(mapped - t)
            losses[name] = tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)
        return losses

    def loss(self, student_features, teacher_features):
        """Weighted sum over layers of `per_layer_losses`: float32 [B]."""
        per_layer = self.per_layer_losses(student_features, teacher_features)
        return tf.add_n([self.weights_by_layer[name] * value for name, value in per_layer.items()])
