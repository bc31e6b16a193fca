"""An exponential moving average of the generator's weights (the generator that is evaluated)."""

import tensorflow as tf

from tfgan_opt.core.compat import keras


def make_ema_network(network):
    """A copy of ``network`` with the same weights, to hold the average."""
    # Left trainable: it never enters a tape, and a frozen copy would be saved (and later
    # loaded for pruning or QAT) as a generator that cannot be fine-tuned.
    ema = keras.models.clone_model(network)
    ema.set_weights(network.get_weights())
    return ema


def update_ema(ema_network, network, step, decay):
    """One EMA update of ``ema_network`` towards ``network`` at trainer ``step`` (a tensor)."""
    # Warm-up as in tf.train.ExponentialMovingAverage(num_updates=step): without it a 0.999
    # average still holds 0.999**2000 = 13.5% of the random initial weights after 2000 steps.
    step = tf.cast(step, tf.float32)
    decay = tf.minimum(decay, (1.0 + step) / (10.0 + step))
    for ema_weight, weight in zip(ema_network.weights, network.weights):
        if ema_weight.dtype.is_floating:
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)
        else:  # step counters of pruning and quantization wrappers: copied, not averaged
            ema_weight.assign(weight)
