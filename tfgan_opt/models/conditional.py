"""The class-conditional parts of the dcgan and mlp networks (issue 15).

Generator: a second input ``label`` int32 [B] selects a class vector e_y of latent size, which
multiplies z: the first layer sees z * e_y (the conditioning of the Keras-GAN cGAN/AC-GAN
examples). Two reasons:

* Size: it costs ``num_classes * latent_dim`` weights (640 for 10 classes and a 64-d latent), where
  a one-hot concatenated to z (cGAN, Mirza & Osindero 2014) adds ``num_classes`` rows to the
  projection (62,720 at width 32, 28x28: 10% of the generator).
* Diversity: the class reaches the network only through z, so the generator cannot keep the class
  and drop z. An additive class mean (z + e_y, tried first) let the projection's batch norm
  shrink z behind the class offsets: on MNIST every class collapsed to nearly one image
  (BUILD_NOTES.md, issue 15).

The class vectors start as N(0, 1) draws. By default (``class_vectors="learned"``, the Keras-GAN
way) they train with the generator and drift toward zero in a third of their entries: a per-class
truncation of z. On the MNIST test digits (latent 128, 11,000 steps) each class used about 14
effective dimensions and recall stayed at 0.70. ``"fixed"`` keeps them at their draw: a class is
told by which dimensions of z carry more variance, every dimension keeps carrying some, and recall
rose to 0.80. The price may be paid in compression, as the network, not the table, now decodes
the class: on ``digits`` the channel-pruned student (15% of the MACs) of a fixed-vector generator
had twice its teacher's FD (1.13 vs 0.57), a learned-vector one about the same (0.71 vs 0.68)
(BUILD_NOTES.md, issue 18, fifth session). Recovery fine-tunes train the vectors either way
(`RecoveryTrainer` unfreezes its student). Tried on MNIST and measured worse: z concatenated with a class embedding
(recall 0.21, every class nearly one image), per-channel class shifts after each batch norm, and
a transition from unconditional to conditional training (Shahbazi et al. 2022).

Conditional batch norm is not used: per-class scales and shifts cannot be folded into the
preceding kernel (fold.py and TFLite fold one affine map per channel), so QAT and int8 export
would keep float BN.

Discriminator: projection (Miyato & Koyama 2018): logits = psi(phi(x)) + <embed(y), phi(x)>, phi the
layer ``features``. With ``acgan_weight`` a second output, ``class_logits`` = Dense(K)(phi(x)), is
the AC-GAN auxiliary classifier (Odena et al. 2017).

Layer names are stable: ``label`` (input), ``class_embedding``, ``class_projection``,
``class_logits``; `num_classes` reads the class count back from a (saved) network.
"""

from tfgan_opt.core.compat import keras

LABEL_INPUT = "label"
CLASS_EMBEDDING = "class_embedding"
CLASS_PROJECTION = "class_projection"
CLASS_LOGITS = "class_logits"


def _check_classes(config):
    if config.num_classes < 2:
        raise ValueError(f"a conditional model needs num_classes >= 2, got {config.num_classes} "
                         "(resolve it from the labels: tfgan_opt.pipeline.conditional)")


def generator_inputs(config, seed=None):
    """The generator's inputs and the tensor its first layer reads.

    Returns:
      ``(inputs, x)``: unconditional ``z`` and ``z``; conditional ``[z, label]`` (float32
      [B, latent_dim], int32 [B]) and z * e_label, float32 [B, latent_dim].
    """
    z = keras.Input((config.latent_dim,), name="z")
    if not config.conditional:
        return z, z
    _check_classes(config)
    label = keras.Input((), dtype="int32", name=LABEL_INPUT)
    # Unit-variance scales: each class has its own random weighting of the latent.
    embedding = keras.layers.Embedding(
        config.num_classes, config.latent_dim, name=CLASS_EMBEDDING,
        embeddings_initializer=keras.initializers.RandomNormal(
            stddev=1.0, seed=None if seed is None else seed + 50),
        trainable=config.class_vectors == "learned")(label)
    return [z, label], keras.layers.Multiply(name="z_class")([z, embedding])


def discriminator_outputs(config, images, features, logits, seed=None):
    """Adds the projection term (and the AC-GAN head) to an unconditional discriminator graph.

    Args:
      config: `ModelConfig`.
      images: the image input; features: phi(x) float32 [B, F]; logits: psi(phi(x)) [B, 1].

    Returns:
      ``(inputs, outputs)`` for ``keras.Model``: unconditional ``images, logits``; conditional
      ``[images, label]`` and logits [B, 1] (plus class logits [B, K] with ``acgan_weight``).
    """
    if not config.conditional:
        return images, logits
    _check_classes(config)
    label = keras.Input((), dtype="int32", name=LABEL_INPUT)
    init = keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + 60)
    embedding = keras.layers.Embedding(config.num_classes, int(features.shape[-1]),
                                       embeddings_initializer=init, name=CLASS_PROJECTION)(label)
    projection = keras.layers.Dot(axes=1, name="projection")([features, embedding])
    logits = keras.layers.Add(name="conditional_logits")([logits, projection])
    if not config.acgan_weight:
        return [images, label], logits
    class_logits = keras.layers.Dense(config.num_classes, kernel_initializer=init,
                                      name=CLASS_LOGITS)(features)
    return [images, label], [logits, class_logits]


def num_classes(network):
    """Classes of a conditional generator or discriminator network; 0 for an unconditional one."""
    for name in (CLASS_EMBEDDING, CLASS_PROJECTION):
        layer = _find_layer(network, name)
        if layer is not None:
            return int(layer.input_dim)
    return 0


def _find_layer(network, name):
    for layer in network.layers:
        # A tfmot wrapper keeps the wrapped layer's name with a prefix.
        inner = getattr(layer, "layer", layer)
        if inner.name == name:
            return inner
    return None


def is_conditional(network):
    """Whether a generator/discriminator network takes a ``label`` input."""
    return len(network.inputs) == 2 and network.inputs[1].dtype.is_integer
