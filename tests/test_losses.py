import numpy as np
import pytest
import tensorflow as tf

from tfgan_opt import ConfigError, LossConfig, losses

REAL = np.array([[2.0], [-1.0], [0.3]], np.float32)
FAKE = np.array([[0.5], [-3.0], [1.2]], np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# Hand-derived per-example values from the definitions in the papers, in float64 numpy.
EXPECTED = {
    "non_saturating": (-np.log(_sigmoid(REAL)) - np.log(1 - _sigmoid(FAKE)),
                       -np.log(_sigmoid(FAKE))),
    "minimax": (-np.log(_sigmoid(REAL)) - np.log(1 - _sigmoid(FAKE)), np.log(1 - _sigmoid(FAKE))),
    "wasserstein": (FAKE - REAL, -FAKE),
    "wgan_gp": (FAKE - REAL, -FAKE),
    "hinge": (np.maximum(0, 1 - REAL) + np.maximum(0, 1 + FAKE), -FAKE),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_losses_match_hand_computed_per_example_values(name):
    loss = losses.get_loss(name)
    expected_d, expected_g = (e.reshape(-1) for e in EXPECTED[name])
    d = loss.discriminator_loss(tf.constant(REAL), tf.constant(FAKE)).numpy()
    g = loss.generator_loss(tf.constant(FAKE)).numpy()
    assert d.shape == (3,) and g.shape == (3,)
    np.testing.assert_allclose(d, expected_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, expected_g, rtol=1e-5, atol=1e-6)


def test_only_wgan_variants_constrain_the_critic():
    assert losses.get_loss("wgan_gp").gradient_penalty and not losses.get_loss("wgan_gp").clip_weights
    assert losses.get_loss("wasserstein").clip_weights
    assert not any(losses.get_loss(n).gradient_penalty or losses.get_loss(n).clip_weights
                   for n in ("non_saturating", "minimax", "hinge"))


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    # D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 for every alpha.
    w = tf.constant(np.random.default_rng(0).normal(size=(1, 4, 4, 1)), tf.float32)
    critic = lambda x, training=True: tf.reduce_sum(w * x, axis=[1, 2, 3])[:, None]  # noqa: E731
    real = tf.random.normal([5, 4, 4, 1], seed=1)
    fake = tf.random.normal([5, 4, 4, 1], seed=2)
    penalty = losses.gradient_penalty(critic, real, fake, tf.random.uniform([5], seed=3)).numpy()
    expected = (np.linalg.norm(w.numpy()) - 1.0) ** 2
    np.testing.assert_allclose(penalty, np.full(5, expected), rtol=1e-4)


def test_gradient_penalty_is_taken_at_the_interpolated_point():
    # D(x) = sum(x^2)/2 has gradient x: at alpha = 0 the penalty is (||real|| - 1)^2, and each
    # example has 4 elements, so ||x|| = 2 * value.
    critic = lambda x, training=True: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3])[:, None]  # noqa
    real = tf.fill([2, 2, 2, 1], 0.5)
    fake = tf.fill([2, 2, 2, 1], 3.0)
    for alpha, point in [(0.0, 0.5), (1.0, 3.0)]:
        penalty = losses.gradient_penalty(critic, real, fake, tf.fill([2], alpha)).numpy()
        np.testing.assert_allclose(penalty, np.full(2, (point * 2.0 - 1) ** 2), rtol=1e-5)


def test_r1_penalty_matches_the_finite_difference_gradient_norm_of_a_tiny_critic():
    from tfgan_opt.core.compat import keras
    # A nonlinear two-layer critic in float64, so central differences are accurate to ~1e-10.
    critic = keras.Sequential([
        keras.layers.Flatten(input_shape=(3, 3, 1), dtype="float64"),
        keras.layers.Dense(5, activation="tanh", dtype="float64",
                           kernel_initializer=keras.initializers.RandomNormal(seed=1)),
        keras.layers.Dense(1, dtype="float64",
                           kernel_initializer=keras.initializers.RandomNormal(seed=2))])
    real = np.random.default_rng(0).uniform(-1, 1, (4, 3, 3, 1))
    penalty = losses.r1_penalty(critic, tf.constant(real)).numpy()

    def logits(x):
        return critic(tf.constant(x)).numpy()[:, 0]

    eps, grads = 1e-6, np.zeros_like(real)
    for index in np.ndindex(real.shape[1:]):
        step = np.zeros_like(real)
        step[(slice(None),) + index] = eps
        grads[(slice(None),) + index] = (logits(real + step) - logits(real - step)) / (2 * eps)
    assert penalty.shape == (4,)
    np.testing.assert_allclose(penalty, (grads ** 2).sum(axis=(1, 2, 3)), rtol=1e-6)
    assert penalty.min() > 0


def test_weight_regularization_sums_l1_and_l2_terms():
    kernels = [tf.constant([[1.0, -2.0]]), tf.constant([3.0])]
    value = losses.weight_regularization(kernels, l1=0.1, l2=0.01).numpy()
    np.testing.assert_allclose(value, 0.1 * 6.0 + 0.01 * 14.0, rtol=1e-6)
    assert losses.weight_regularization(kernels).numpy() == 0.0


def test_unknown_loss_name_raises_config_error():
    with pytest.raises(ConfigError, match="'lsgan'"):
        losses.get_loss("lsgan")


def test_mode_seeking_loss_is_the_inverse_image_to_latent_distance_ratio_of_row_pairs():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3)).astype(np.float32)  # the odd last row is left out
    images = rng.normal(size=(5, 2, 2, 1)).astype(np.float32)
    ratio = np.abs(images[0] - images[1]).mean() + np.abs(images[2] - images[3]).mean()
    ratio /= np.abs(z[0] - z[1]).mean() + np.abs(z[2] - z[3]).mean()
    np.testing.assert_allclose(losses.mode_seeking_loss(z, images).numpy(),
                               1.0 / (ratio + 1e-5), rtol=1e-5)
    # Two latents giving nearly one image (a collapsed mode) cost far more than distinct images.
    collapsed = np.repeat(images[0:4:2], 2, axis=0) + 1e-3 * images[:4]
    assert losses.mode_seeking_loss(z[:4], collapsed) > 100 * losses.mode_seeking_loss(z[:4],
                                                                                      images[:4])


def test_mode_seeking_loss_pushes_the_pairs_apart():
    images = tf.Variable(np.random.default_rng(1).normal(size=(4, 2, 2, 1)).astype(np.float32))
    z = tf.constant(np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = losses.mode_seeking_loss(z, images)
    step = images - 0.1 * tape.gradient(loss, images)
    assert np.abs(step[0] - step[1]).mean() > np.abs(images[0] - images[1]).mean()


def test_mode_seeking_weight_must_not_be_negative():
    with pytest.raises(ConfigError, match="mode_seeking_weight=-1"):
        LossConfig(mode_seeking_weight=-1.0)
