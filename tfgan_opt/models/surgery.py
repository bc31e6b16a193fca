"""Network surgery shared by the compression stages: clone a Functional network layer by layer,
see through wrappers, find kernels.

These know nothing about pruning or quantization; `tfgan_opt.compress` builds on them.
"""

import tensorflow as tf

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


def _graph_nodes(network):
    """The network's layer calls (nodes), inputs first, each after the nodes it reads."""
    return [node for depth in sorted(network._nodes_by_depth, reverse=True)
            for node in network._nodes_by_depth[depth]]


def consumer_counts(network):
    """id(KerasTensor) -> how many layer calls (and network outputs) read it."""
    counts = {}
    for node in _graph_nodes(network):
        for tensor in node.keras_inputs:
            counts[id(tensor)] = counts.get(id(tensor), 0) + 1
    for tensor in network.outputs:
        counts[id(tensor)] = counts.get(id(tensor), 0) + 1
    return counts


def rebuild_network(network, make_layer):
    """Rebuilds a Functional or Sequential network as a Functional one, layer call by layer call.

    Unlike ``keras.models.clone_model``, a layer can be dropped: ``make_layer(layer)`` returns
    the new layer, or None to pass the layer's input through (e.g. a BatchNormalization folded
    into the layer before it). A layer called several times is made once. Weights are not
    copied.

    Args:
      network: Functional or Sequential keras.Model.
      make_layer: function original layer -> new layer or None.

    Returns:
      A Functional keras.Model with the same name, input names and graph.
    """
    tensors, made = {}, {}
    for node in _graph_nodes(network):
        outputs = tf.nest.flatten(node.outputs)
        if node.is_input:
            tensors[id(outputs[0])] = keras.Input(batch_shape=outputs[0].shape,
                                                  dtype=outputs[0].dtype, name=node.layer.name)
            continue
        if node.layer.name not in made:
            made[node.layer.name] = make_layer(node.layer)
        inputs = [tensors[id(t)] for t in node.keras_inputs]
        layer, argument = made[node.layer.name], inputs[0] if len(inputs) == 1 else inputs
        results = tf.nest.flatten(argument if layer is None else layer(argument))
        for original, result in zip(outputs, results):
            tensors[id(original)] = result
    return keras.Model([tensors[id(t)] for t in network.inputs],
                       [tensors[id(t)] for t in network.outputs], name=network.name)


def as_functional(model):
    """A Functional copy (fresh layers, same names and weights) of a Sequential or Functional
    model, so that every compression stage sees an input layer and a graph."""
    functional = rebuild_network(model, lambda layer: type(layer).from_config(layer.get_config()))
    for layer in model.layers:
        if layer.weights:
            functional.get_layer(layer.name).set_weights(layer.get_weights())
    return functional
