"""The gradient penalty (paper Eq. 1, thesis Eq. 3.12-3.13) and one WGAN-GP iteration (Algorithm 4)."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from gan_seg_aug.training.wgan_gp import WGANGP, draw_noise, gradient_penalty, make_optimizer  # noqa: E402

B, H, W, C = 4, 8, 8, 2  # tiny pairs: one image channel + one mask channel


def linear_critic(w):
    """D(x) = <w, x> per sample: its gradient is w everywhere."""
    return lambda x: tf.reduce_sum(x * w[None], axis=[1, 2, 3])


@pytest.mark.parametrize("norm_w", [0.3, 1.0, 2.5])
def test_penalty_of_linear_critic_is_exact(norm_w):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((H, W, C)).astype(np.float32)
    w *= norm_w / np.linalg.norm(w)  # spans image AND mask channel: the norm must cover both
    real = rng.uniform(-1, 1, (B, H, W, C)).astype(np.float32)
    fake = rng.uniform(-1, 1, (B, H, W, C)).astype(np.float32)
    alpha = rng.uniform(size=(B, 1, 1, 1)).astype(np.float32)
    gp, norms = gradient_penalty(linear_critic(tf.constant(w)), real, fake, alpha)
    np.testing.assert_allclose(norms.numpy(), np.full(B, norm_w), rtol=1e-5)
    np.testing.assert_allclose(float(gp), (norm_w - 1.0) ** 2, rtol=1e-5, atol=1e-10)


def test_penalty_norm_is_per_sample_over_all_channels_at_its_own_alpha():
    # D(x) = 0.5 ||x||^2 has gradient x, so each norm is ||x_hat_i|| of that sample's interpolate.
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (B, H, W, C)).astype(np.float32)
    fake = rng.uniform(-1, 1, (B, H, W, C)).astype(np.float32)
    alpha = np.array([0.0, 0.25, 0.75, 1.0], np.float32).reshape(B, 1, 1, 1)
    gp, norms = gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x ** 2, axis=[1, 2, 3]), real, fake, alpha)
    x_hat = alpha * real + (1 - alpha) * fake  # thesis Eq. 3.13: eps * x + (1 - eps) * x_tilde
    expected = np.sqrt((x_hat ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(float(gp), np.mean((expected - 1) ** 2), rtol=1e-5)
    # alpha = 0 is the fake sample itself, alpha = 1 the real one
    np.testing.assert_allclose(norms.numpy()[0], np.sqrt((fake[0] ** 2).sum()), rtol=1e-5)
    np.testing.assert_allclose(norms.numpy()[3], np.sqrt((real[3] ** 2).sum()), rtol=1e-5)


def test_zero_gradient_critic_gives_finite_penalty_and_gradients():
    w = tf.Variable(tf.zeros((H, W, C)))  # D(x) = <0, x>: the input gradient is exactly 0
    x = tf.ones((B, H, W, C))
    with tf.GradientTape() as tape:
        gp, norms = gradient_penalty(linear_critic(w), x, -x, tf.fill((B, 1, 1, 1), 0.5))
    grad = tape.gradient(gp, w)
    assert np.isfinite(float(gp)) and float(gp) == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.isfinite(grad.numpy())), "sqrt at 0 must not produce NaN gradients"
    # A critic that ignores its input altogether (no gradient path at all) is handled too.
    gp2, _ = gradient_penalty(lambda x: tf.zeros((B,)), x, -x, tf.fill((B, 1, 1, 1), 0.5))
    assert float(gp2) == pytest.approx(1.0, abs=1e-5)


def tiny_generator(latent=8):
    z = keras.Input((latent,))
    x = keras.layers.Dense(4 * 4 * 4)(z)
    x = keras.layers.Reshape((4, 4, 4))(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2DTranspose(C, 5, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(z, x)


def tiny_critic():
    i = keras.Input((H, W, C))
    x = keras.layers.Conv2D(4, 5, strides=2, padding="same")(i)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dense(1)(keras.layers.Flatten()(x))
    return keras.Model(i, x)


class SpyWGANGP(WGANGP):
    """Records the mean of the real minibatch each critic step receives."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seen = tf.Variable(tf.zeros((0,)), shape=tf.TensorShape([None]), trainable=False)

    def critic_step(self, real, z, alpha):
        self.seen.assign(tf.concat([self.seen, [tf.reduce_mean(real)]], 0))
        return super().critic_step(real, z, alpha)


def make_model(cls=WGANGP, seed=0):
    keras.utils.set_random_seed(seed)
    m = cls(tiny_generator(), tiny_critic(), latent_dim=8, n_critic=5, seed=seed)
    m.compile(g_optimizer=make_optimizer(), d_optimizer=make_optimizer())
    return m


def test_iteration_runs_five_critic_steps_on_fresh_batches_and_one_generator_step():
    m = make_model(SpyWGANGP)
    g0 = [v.numpy().copy() for v in m.generator.trainable_variables]
    d0 = [v.numpy().copy() for v in m.critic.trainable_variables]
    # minibatch i is the constant (i - 2) / 4: each critic step must see its own one
    data = np.stack([np.full((B, H, W, C), (i - 2) / 4, np.float32) for i in range(5)])
    out = m.train_step(tf.constant(data))
    np.testing.assert_allclose(m.seen.numpy(), (np.arange(5) - 2) / 4, atol=1e-6)
    assert int(m.d_optimizer.iterations) == 5 and int(m.g_optimizer.iterations) == 1
    assert set(out) == {"critic_loss", "wasserstein", "gp", "gen_loss"}
    assert all(np.isfinite(float(v)) for v in out.values())
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(g0, m.generator.trainable_variables))
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(d0, m.critic.trainable_variables))


def test_losses_follow_the_wgan_gp_definitions():
    m = make_model()
    real = tf.random.uniform((B, H, W, C), -1, 1, seed=3)
    z, alpha, _ = draw_noise(0, 1, n_critic=1, batch_size=B, latent_dim=8)
    loss, w, gp = m.critic_step(real, z[0], alpha[0])
    assert float(loss) == pytest.approx(-float(w) + 10.0 * float(gp), rel=1e-5, abs=1e-6)
    assert float(gp) >= 0.0


def test_alpha_is_drawn_per_sample_and_noise_is_a_function_of_seed_and_iteration():
    z, a, zg = (t.numpy() for t in draw_noise(5, 7, n_critic=5, batch_size=16, latent_dim=8))
    assert a.shape == (5, 16, 1, 1, 1)
    assert len(np.unique(a)) == 5 * 16 and a.min() >= 0.0 and a.max() < 1.0
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2
    again = draw_noise(5, 7, n_critic=5, batch_size=16, latent_dim=8)
    for x, y in zip((z, a, zg), again):
        np.testing.assert_array_equal(x, y.numpy())
    assert not np.allclose(draw_noise(5, 8, n_critic=5, batch_size=16, latent_dim=8)[0].numpy(), z)
    assert not np.allclose(draw_noise(6, 7, n_critic=5, batch_size=16, latent_dim=8)[0].numpy(), z)


def test_the_iteration_counter_selects_the_noise_so_a_restored_counter_repeats_an_iteration():
    data = tf.random.uniform((5, B, H, W, C), -1, 1, seed=4)
    m1, m2 = make_model(seed=1), make_model(seed=1)
    m1.train_step(data)
    m2.iteration.assign(1)  # m2 is at "iteration 1 done" with the initial weights: its next noise differs
    w1 = [v.numpy() for v in m1.generator.trainable_variables]
    m2.train_step(data)
    assert int(m1.iteration) == 1 and int(m2.iteration) == 2
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(w1, m2.generator.trainable_variables))
    m3 = make_model(seed=1)
    m3.train_step(data)
    for a, v in zip(w1, m3.generator.trainable_variables):
        np.testing.assert_allclose(v.numpy(), a, rtol=1e-5, atol=1e-6)


def test_wrong_input_shape_is_refused():
    m = make_model()
    with pytest.raises(ValueError, match="n_critic=5"):
        m.train_step(tf.zeros((3, B, H, W, C)))
    with pytest.raises(ValueError, match="n_critic must be"):
        WGANGP(tiny_generator(), tiny_critic(), n_critic=0)


def test_keras_fit_drives_the_same_train_step():
    m = make_model()
    data = tf.random.uniform((5, B, H, W, C), -1, 1, seed=1)
    hist = m.fit(tf.data.Dataset.from_tensors(data).repeat(2), epochs=1, verbose=0)
    assert int(m.g_optimizer.iterations) == 2 and int(m.d_optimizer.iterations) == 10
    assert np.isfinite(hist.history["critic_loss"][-1])


def test_mixed_bfloat16_keeps_losses_and_penalty_in_float32():
    from gan_seg_aug.training.precision import set_precision

    with set_precision("mixed_bfloat16"):
        g, d = tiny_generator(), tiny_critic()
    m = WGANGP(g, d, latent_dim=8)
    m.compile(g_optimizer=make_optimizer(), d_optimizer=make_optimizer())
    z, alpha, _ = draw_noise(0, 1, n_critic=1, batch_size=B, latent_dim=8)
    loss, w, gp = m.critic_step(tf.random.uniform((B, H, W, C), -1, 1, seed=2), z[0], alpha[0])
    assert {t.dtype for t in (loss, w, gp)} == {tf.float32}
    assert all(np.isfinite(float(t)) for t in (loss, w, gp))


def test_xla_iteration_draws_the_same_noise_and_matches_the_graph_one():
    """jit_compile compiles the update only: XLA's own random kernels would draw other noise."""
    data = tf.random.stateless_uniform((5, B, H, W, C), (1, 2), -1, 1)
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        m = WGANGP(tiny_generator(), tiny_critic(), latent_dim=8, n_critic=5, seed=0, jit_compile=jit)
        m.compile(g_optimizer=make_optimizer(), d_optimizer=make_optimizer())
        metrics = {k: float(v) for k, v in m.train_step(data).items()}
        runs.append((metrics, [v.numpy() for v in m.generator.trainable_variables + m.critic.trainable_variables]))
    (m0, w0), (m1, w1) = runs
    for key in m0:
        assert m1[key] == pytest.approx(m0[key], rel=1e-4, abs=1e-5), key
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
