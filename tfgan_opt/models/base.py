"""Subclassed Keras `Generator` and `Discriminator` that delegate to a Functional network.

tfmot's `prune_low_magnitude` and `quantize_model` reject whole subclassed models but accept
Functional ones. So each model here is a thin `keras.Model` subclass around a Functional
``network``; compression stages transform the network and re-wrap it with `with_network`, and the
public class (what users train, save and call) never changes.
"""

import numpy as np

from tfgan_opt.core.compat import import_tfmot, keras
from tfgan_opt.core.naming import class_cycle, sample_latents
from tfgan_opt.models import conditional
from tfgan_opt.models import layers  # noqa: F401  (registers tfgan_opt>SpectralNormalization)

FEATURES_LAYER = "features"


def _custom_objects():
    """Layer classes a serialized (possibly pruned or quantized) network may contain."""
    objects = dict(keras.utils.get_custom_objects())
    try:
        # Deferred: tfmot is slow to import and only needed once a network is loaded.
        from tfgan_opt.models import qat_layers  # noqa: F401  (registers the QAT objects)
        tfmot = import_tfmot()
        # The scopes hold their objects in the scope, not in the global dict that
        # get_custom_objects() returns, so read them from the scope objects.
        for scope in (tfmot.sparsity.keras.prune_scope(),
                      tfmot.quantization.keras.quantize_scope()):
            for scope_objects in scope.custom_objects:
                objects.update(scope_objects)
        # Pruning schedules and quantizers sit inside the wrappers' configs; naming them here lets
        # `keras_files.check_keras_file` tell them from an unknown class.
        for name in ("ConstantSparsity", "PolynomialDecay"):
            objects[name] = getattr(tfmot.sparsity.keras, name)
        for name in ("AllValuesQuantizer", "LastValueQuantizer", "MovingAverageQuantizer"):
            objects[name] = getattr(tfmot.quantization.keras.quantizers, name)
        objects.update(keras.utils.get_custom_objects())
    except ImportError:  # pragma: no cover - tfmot is a hard dependency
        pass
    return objects


def _deserialize_network(config):
    return keras.Model.from_config(config, custom_objects=_custom_objects())


class _NetworkWrapper(keras.Model):
    """Shared plumbing: hold one Functional network, serialize it, rebuild around a new one."""

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(network, keras.Model) or not network._is_graph_network:
            raise TypeError(f"network must be a Functional or Sequential keras.Model, got "
                            f"{type(network).__name__}")
        self.network = network

    def get_config(self):
        return {"name": self.name, "network": {"class_name": type(self.network).__name__,
                                               "config": self.network.get_config()}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        network = _deserialize_network(config.pop("network")["config"])
        return cls(network=network, **config)

    def with_network(self, network):
        """Returns a new model of the same class around ``network`` (e.g. a pruned copy)."""
        config = self.get_config()
        config.pop("network")
        return type(self)(network=network, **config)


class Generator(_NetworkWrapper):
    """Maps latent vectors z ~ N(0, I) to images in [-1, 1].

    Call: ``generator(z, training=False)`` with z float32 [B, latent_dim] returns float32
    [B, image_size, image_size, channels] in [-1, 1] (the network ends in tanh). A conditional
    generator (`tfgan_opt.models.conditional`) is called with ``(z, labels)``, labels int32 [B];
    its `sample_latents` returns such pairs, so code that feeds ``sample_latents`` to the
    generator (and to a teacher) works for both kinds.
    """

    @property
    def latent_dim(self):
        return int(self.network.inputs[0].shape[-1])

    @property
    def conditional(self):
        return conditional.is_conditional(self.network)

    @property
    def num_classes(self):
        """Classes of a conditional generator, 0 for an unconditional one."""
        return conditional.num_classes(self.network) if self.conditional else 0

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.network.output_shape[1:])

    def call(self, z, training=False):
        return self.network(z, training=training)

    def sample_latents(self, num, seed=0, labels=None):
        """Returns ``num`` seeded latent vectors, float32 [num, latent_dim], from N(0, I) (for a
        network with a wider input, e.g. an image, N(0, I) of that shape).

        A conditional generator gets ``(z, labels)``: ``labels`` int32 [num] if given, else every
        class in turn (0, 1, ..., K-1, 0, ...), so each class gets num / K samples.
        """
        shape = tuple(int(d) for d in self.network.inputs[0].shape[1:])
        z = sample_latents(num, int(np.prod(shape)), seed)
        z = z if len(shape) == 1 else z.reshape((num,) + shape)
        if not self.conditional:
            return z
        if labels is None:
            labels = class_cycle(num, self.num_classes)
        return z, np.asarray(labels, np.int32)

    def generate(self, num, seed=0, batch_size=500, labels=None):
        """Generates ``num`` images as a numpy float32 array [num, H, W, C] in [-1, 1]
        (conditional: of ``labels``, default every class in turn)."""
        inputs = self.sample_latents(num, seed, labels=labels)
        return np.concatenate([self(slice_inputs(inputs, i, i + batch_size), training=False).numpy()
                               for i in range(0, num, batch_size)], axis=0)


def slice_inputs(inputs, start, stop):
    """Rows ``start:stop`` of generator inputs: z, or a conditional (z, labels) pair."""
    if isinstance(inputs, (tuple, list)):
        return tuple(part[start:stop] for part in inputs)
    return inputs[start:stop]


class Discriminator(_NetworkWrapper):
    """Scores images: float32 [B, H, W, C] in [-1, 1] -> logits float32 [B, 1].

    A conditional discriminator is called with ``(images, labels)`` and returns the projection
    logits; `logits_and_classes` also returns its AC-GAN class logits if it has them.

    The penultimate activation is exposed through `features` for feature-level distillation:
    the output of the layer named ``features`` if there is one (the networks of
    `tfgan_opt.models`), else the input of the layer that computes the logits (a user's
    network, e.g. the Flatten before the last Dense).
    """

    def __init__(self, network, **kwargs):
        super().__init__(network, **kwargs)
        names = {layer.name for layer in network.layers}
        features = (network.get_layer(FEATURES_LAYER).output if FEATURES_LAYER in names
                    else network.output._keras_history.layer.input)
        # phi(x) of a conditional network reads the images only.
        self._feature_network = keras.Model(network.inputs[0], features)

    @property
    def conditional(self):
        return conditional.is_conditional(self.network)

    @property
    def has_classifier(self):
        """Whether the network has an AC-GAN class-logits output."""
        return len(self.network.outputs) > 1

    def call(self, images, training=False):
        outputs = self.network(images, training=training)
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    def logits_and_classes(self, inputs, training=False):
        """``(logits [B, 1], class logits [B, K])`` of an AC-GAN discriminator."""
        logits, classes = self.network(inputs, training=training)
        return logits, classes

    def features(self, images, training=False):
        """Penultimate features, float32 [B, D] (of the images of an ``(images, labels)`` pair)."""
        if isinstance(images, (tuple, list)):
            images = images[0]
        return self._feature_network(images, training=training)


def kernel_weights(model):
    """The kernels (not biases, BN or norm statistics) of a network: what regularization acts on."""
    return [w for w in model.trainable_weights if "kernel" in w.name]


def count_params(model):
    """Number of parameters (trainable and not) of a built model."""
    return int(sum(np.prod(w.shape) for w in model.weights))
