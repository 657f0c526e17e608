"""The critic normalisation variants (docs/decisions.md §3) on batches where the answer is known, and the
sign of both WGAN-GP updates (a consistent sign swap in the losses would pass a loss-value test)."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from gan_seg_aug.training.wgan_gp import WGANGP, critic_scores, generator_scores, make_optimizer  # noqa: E402
from gan_seg_aug.nets.networks import RowStatsBatchNorm, build_critic, build_generator  # noqa: E402

REAL = np.array([1.0, 3.0], np.float32).reshape(2, 1, 1, 1)
FAKE = np.array([0.0, 10.0], np.float32).reshape(2, 1, 1, 1)
ALPHA = np.array([0.5, 0.25], np.float32).reshape(2, 1, 1, 1)
EPS = 1e-6


def standardising_critic(row_stats: bool):
    """D(x) = (x - mean) / sqrt(var + eps) of a 1-pixel input, statistics from the batch (no scale/offset)."""
    x = keras.Input((1, 1, 1))
    if row_stats:
        h = RowStatsBatchNorm(epsilon=EPS)(x)
    else:
        h = keras.layers.BatchNormalization(epsilon=EPS, center=False, scale=False)(x)
    return keras.Model(x, keras.layers.Flatten()(h))


def standardise(x, ref):
    return (x - ref.mean()) / np.sqrt(ref.var() + EPS)


def test_separate_calls_hide_a_mean_shift_between_real_and_fake():
    # Three calls, three statistics: real and fake are each standardised on their own, so the critic
    # scores [1, 3] and [0, 10] alike and its Wasserstein estimate is 0 whatever the shift.
    d_real, d_fake, _ = critic_scores(standardising_critic(False), REAL, FAKE, ALPHA, "batch")
    np.testing.assert_allclose(d_real.numpy(), [-1, 1], atol=1e-4)
    np.testing.assert_allclose(d_fake.numpy(), [-1, 1], atol=1e-4)


def test_joint_call_uses_one_statistic_for_real_fake_and_interpolates():
    d_real, d_fake, norms = critic_scores(standardising_critic(False), REAL, FAKE, ALPHA, "batch-joint")
    x_hat = ALPHA * REAL + (1 - ALPHA) * FAKE
    allx = np.concatenate([REAL, FAKE, x_hat]).ravel().astype(np.float64)
    np.testing.assert_allclose(d_real.numpy(), standardise(REAL.ravel(), allx), rtol=1e-4)
    np.testing.assert_allclose(d_fake.numpy(), standardise(FAKE.ravel(), allx), rtol=1e-4)

    # the gradient of sum(D(x_hat)) w.r.t. each x_hat_i runs through the statistics too: finite differences
    def total(xh):
        ref = np.concatenate([REAL.ravel(), FAKE.ravel(), xh])
        return standardise(xh, ref).sum()

    xh = x_hat.ravel().astype(np.float64)
    fd = [(total(xh + h) - total(xh - h)) / 2e-4 for h in np.eye(2) * 1e-4]
    np.testing.assert_allclose(norms.numpy(), np.abs(fd), rtol=1e-3)


def test_realfake_statistics_are_applied_to_the_interpolates():
    d_real, d_fake, norms = critic_scores(standardising_critic(True), REAL, FAKE, ALPHA, "batch-realfake")
    ref = np.concatenate([REAL, FAKE]).ravel().astype(np.float64)  # mean 3.5, var 15.25
    np.testing.assert_allclose(d_real.numpy(), standardise(REAL.ravel(), ref), rtol=1e-4)
    np.testing.assert_allclose(d_fake.numpy(), standardise(FAKE.ravel(), ref), rtol=1e-4)
    # x_hat does not move the statistics, so each gradient is exactly 1 / std
    np.testing.assert_allclose(norms.numpy(), np.full(2, 1 / np.sqrt(15.25 + EPS)), rtol=1e-4)


def test_generator_scores_see_the_critic_steps_normalisation():
    critic = standardising_critic(True)
    got = generator_scores(critic, FAKE, REAL, ALPHA, "batch-realfake").numpy()
    np.testing.assert_allclose(got, standardise(FAKE.ravel(), np.r_[REAL.ravel(), FAKE.ravel()]), rtol=1e-4)
    alone = generator_scores(standardising_critic(False), FAKE, REAL, ALPHA, "batch").numpy()
    np.testing.assert_allclose(alone, [-1, 1], atol=1e-4)


def test_row_stats_layer_uses_moving_averages_in_inference():
    bn = RowStatsBatchNorm(momentum=0.0, epsilon=0.0)
    x = np.array([[2.0], [4.0]], np.float32)
    bn(x, training=True)  # momentum 0: the moving statistics become this batch's
    np.testing.assert_allclose(np.asarray(bn(np.array([[3.0]], np.float32), training=False)), [[0.0]], atol=1e-6)


def smoke_gan(norm, lr=1e-2):
    keras.utils.set_random_seed(0)
    g = build_generator("scr_lung", height=32, width=32, width_div=32, latent_dim=8)
    d = build_critic("scr_lung", height=32, width=32, width_div=32, norm=norm)
    m = WGANGP(g, d, latent_dim=8, n_critic=1, gp_lambda=0.0, critic_norm=norm)
    m.compile(g_optimizer=make_optimizer(lr), d_optimizer=make_optimizer(lr))
    return m


@pytest.mark.parametrize("norm", ["batch", "batch-joint", "batch-realfake", "layer", "none"])
def test_critic_step_raises_the_estimate_and_generator_step_raises_its_score(norm):
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (8, 32, 32, 2)).astype(np.float32))
    z = tf.constant(rng.standard_normal((8, 8)).astype(np.float32))
    alpha = tf.constant(rng.uniform(size=(8, 1, 1, 1)).astype(np.float32))
    m = smoke_gan(norm)

    def estimate():
        d_real, d_fake, _ = critic_scores(m.critic, real, m.generator(z, training=True), alpha, norm)
        return float(tf.reduce_mean(d_real - d_fake))

    before = estimate()
    m.critic_step(real, z, alpha)
    assert estimate() > before, "a critic update must raise E[D(real)] - E[D(fake)]"

    def gen_score():
        return float(tf.reduce_mean(generator_scores(m.critic, m.generator(z, training=True), real, alpha, norm)))

    before = gen_score()
    m.generator_step(z, real, alpha)
    assert gen_score() > before, "a generator update must raise E[D(G(z))]"


def test_realfake_refuses_several_replicas():
    strategy = tf.distribute.get_strategy()

    class Two:
        num_replicas_in_sync = 2

        def scope(self):
            return strategy.scope()

    with pytest.raises(ValueError, match="batch-realfake needs a single replica"):
        WGANGP(build_generator("scr_lung", height=32, width=32, width_div=32, latent_dim=8),
               build_critic("scr_lung", height=32, width=32, width_div=32, norm="batch-realfake"),
               latent_dim=8, critic_norm="batch-realfake", strategy=Two())
