"""Network surgery shared by the compression stages: clone a Functional network layer by layer,
see through wrappers, find kernels.

These know nothing about pruning or quantization; `tfgan_opt.compress` builds on them.
"""

from tfgan_opt.core.compat import keras

# The layers that hold a kernel the compression stages act on (prune, quantize, fold, narrow).
KERNEL_LAYER_TYPES = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def clone_network(network, wrap=None):
    """Clones a Functional network with fresh layers, optionally wrapped, and copies its weights.

    Every layer is rebuilt from its config, so the clone shares no layer (and no weight) with
    ``network``: tfmot's own cloning reuses layers, which would leave a layer with two inbound
    nodes (breaking ``Discriminator.features``) and tie the clone's weights to the original's.

    Args:
      network: Functional keras.Model.
      wrap: optional function fresh layer -> layer (e.g. a pruning wrapper around it).

    Returns:
      The cloned Functional keras.Model, with the same weights as ``network``.
    """
    def fresh(layer):
        copy = type(layer).from_config(layer.get_config())
        return wrap(copy) if wrap is not None else copy

    clone = keras.models.clone_model(network, clone_function=fresh)
    clones = {inner_layer(layer).name: layer for layer in clone.layers}
    for layer in network.layers:
        if layer.weights:
            clones[inner_layer(layer).name].set_weights(layer.get_weights())
    return clone


def kernel_variable(layer):
    """The kernel variable of a (possibly wrapped) Dense/Conv layer.

    Searched among the weights because under QAT the inner layer's ``kernel`` attribute is the
    fake-quantized tensor, not the variable.
    """
    return next(w for w in layer.weights if w.name.split("/")[-1].split(":")[0] == "kernel")


def inner_layer(layer):
    """The layer inside any stack of wrappers (pruning, quantization, spectral norm)."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer
