"""The pair-generating WGAN-GP: gradient penalty and one training iteration (thesis §3.3.1, §4.2; paper §III, Eq. 1).

Paper Eq. 1 / thesis Eq. 3.12::

    L = E_x~pR[D(x)] - E_z~pz[D(G(z))] + λ E_x̂~px̂[(‖∇_x̂ D(x̂)‖₂ - 1)²]

and thesis Algorithm 4 ("Training algorithm for WGAN-GP"): for k_critic = 5 critic update steps,
"Generate a minibatch G(z) of m images … Take a minibatch x of m images from the real data …
Compute random interpolates between real and generated data, using uniform noise ε ~ U[0,1]",
x̂ = ε x + (1 − ε) x̃ (Eq. 3.13), update the critic with Adam; then one generator update with
g_G = −∇ (1/m) Σ D(G(z)) (Eq. 3.15).  §4.2: "we used the default value suggested by Gulrajani et
al., setting λ = 10"; Tables 4.1 / 4.3: Adam(η = 0.0001, β1 = 0.5, β2 = 0.9) for both networks.

Here the "images" are image-segmentation pairs (§4.1): the mask is one extra channel, so the
penalty's gradient norm runs over every pixel of every channel, image and mask alike.

The critic is the *negated* Eq. 3.12 minimised: ``critic_loss = E[D(fake)] − E[D(real)] + λ·GP``;
the reported Wasserstein estimate is ``E[D(real)] − E[D(fake)]``.
"""
from __future__ import annotations

import keras
import tensorflow as tf

GP_EPS = 1e-12  # inside the sqrt: keeps d‖g‖/dg finite when g == 0 (sqrt'(0) = inf, inf·0 = NaN)


def gradient_penalty(critic_fn, real, fake, alpha):
    """WGAN-GP penalty mean((‖∇_x̂ D(x̂)‖₂ − 1)²) with x̂ = α·real + (1 − α)·fake (thesis Eq. 3.12, 3.13).

    ``alpha`` has one value per sample (shape ``[B, 1, 1, 1]``), so each pair is interpolated
    at its own point on its real–fake line.  The norm is per sample over all pixels and channels.
    Returns ``(penalty, grad_norms)``; both float32 whatever the critic's compute dtype.

    A critic with batch statistics (BN in training mode) couples the samples; like the reference
    code (``tf.gradients(Discriminator(interpolates), [interpolates])``) the gradient is that of
    the summed scores, which for a per-sample critic is exactly each sample's own gradient.

    >>> import numpy as np
    >>> w = tf.constant(np.full((1, 2, 2, 1), 0.25, np.float32))   # ‖w‖ = 0.5
    >>> linear = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])
    >>> x = tf.zeros((3, 2, 2, 1))
    >>> gp, norms = gradient_penalty(linear, x, x + 1.0, tf.fill((3, 1, 1, 1), 0.5))
    >>> round(float(gp), 6), np.round(norms.numpy(), 6).tolist()
    (0.25, [0.5, 0.5, 0.5])
    """
    real = tf.convert_to_tensor(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    alpha = tf.cast(alpha, tf.float32)
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = tf.cast(critic_fn(x_hat), tf.float32)
    # ZERO: a critic that ignores its input has gradient 0, not None
    grads = tf.cast(tape.gradient(scores, x_hat, unconnected_gradients=tf.UnconnectedGradients.ZERO), tf.float32)
    axes = list(range(1, len(x_hat.shape)))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + GP_EPS)
    return tf.reduce_mean(tf.square(norms - 1.0)), norms


class WGANGP(keras.Model):
    """Generator + critic trained with WGAN-GP (thesis Algorithm 4), keras-io custom ``train_step`` style.

    ``train_step(real_batches)`` runs ONE iteration: ``n_critic`` critic updates, each on its own
    fresh real minibatch ``real_batches[i]`` (shape ``[n_critic, B, H, W, C]``), then one generator
    update.  z ~ N(0, 1) (Table 4.1) and α ~ U[0, 1] come from ``self.rng``, a
    ``tf.random.Generator`` whose state is saved with the checkpoints, so a resumed run draws the
    same noise as an uninterrupted one.

    Both networks run in training mode, as in the reference code (its batch norm always uses batch
    statistics).  Real, fake and interpolated minibatches go through the critic in three separate
    calls, each normalised with its own batch statistics (see docs/decisions.md §3).
    """

    def __init__(self, generator, critic, *, latent_dim: int = 128, gp_lambda: float = 10.0,
                 n_critic: int = 5, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.generator = generator
        self.critic = critic
        self.latent_dim = int(latent_dim)
        self.gp_lambda = float(gp_lambda)
        self.n_critic = int(n_critic)
        self.rng = tf.random.Generator.from_seed(seed)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.gen_loss_tracker = keras.metrics.Mean(name="gen_loss")

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Build the slots now, eagerly: variables must not be created inside a traced tf.function.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.critic.trainable_variables)

    @property
    def metrics(self):
        return [self.critic_loss_tracker, self.wasserstein_tracker, self.gp_tracker, self.gen_loss_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def draw_latent(self, batch_size):
        return self.rng.normal([batch_size, self.latent_dim])

    def draw_alpha(self, batch_size):
        """One α ~ U[0, 1] per sample, broadcast over H, W, C (Algorithm 4, Eq. 3.13)."""
        return self.rng.uniform([batch_size, 1, 1, 1])

    # A function of its own, kept out-of-line: train_step calls the one traced graph n_critic times
    # instead of optimising five inlined copies (first call ~6x faster; step time unchanged).
    @tf.function(experimental_attributes={"_noinline": True})
    def critic_step(self, real):
        """One critic update on one real minibatch; returns (critic_loss, wasserstein, gp)."""
        real = tf.cast(real, tf.float32)
        batch = tf.shape(real)[0]
        z = self.draw_latent(batch)
        alpha = self.draw_alpha(batch)
        fake = tf.cast(self.generator(z, training=True), tf.float32)  # no gradient to G in this step
        with tf.GradientTape() as tape:
            d_real = tf.cast(self.critic(real, training=True), tf.float32)
            d_fake = tf.cast(self.critic(fake, training=True), tf.float32)
            gp, _ = gradient_penalty(lambda x: self.critic(x, training=True), real, fake, alpha)
            wasserstein = tf.reduce_mean(d_real) - tf.reduce_mean(d_fake)
            loss = -wasserstein + self.gp_lambda * gp
        grads = tape.gradient(loss, self.critic.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
        return loss, wasserstein, gp

    @tf.function(experimental_attributes={"_noinline": True})
    def generator_step(self, batch_size):
        """One generator update, −E[D(G(z))] (Eq. 3.15), on a fresh z; returns the generator loss."""
        z = self.draw_latent(batch_size)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            d_fake = tf.cast(self.critic(fake, training=True), tf.float32)
            loss = -tf.reduce_mean(d_fake)
        grads = tape.gradient(loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return loss

    @tf.function
    def train_step(self, data):
        """One WGAN-GP iteration from ``data`` = ``[n_critic, B, H, W, C]`` real pairs in [-1, 1]."""
        real_batches = data[0] if isinstance(data, (tuple, list)) else data
        if real_batches.shape.rank != 5 or (real_batches.shape[0] not in (None, self.n_critic)):
            raise ValueError(f"train_step expects [n_critic={self.n_critic}, B, H, W, C] real pairs, "
                             f"got shape {real_batches.shape}")
        d_losses, ws, gps = [], [], []
        for i in range(self.n_critic):  # unrolled: n_critic is a small constant (5)
            d_loss, w, gp = self.critic_step(real_batches[i])
            d_losses.append(d_loss)
            ws.append(w)
            gps.append(gp)
        g_loss = self.generator_step(tf.shape(real_batches)[1])
        self.critic_loss_tracker.update_state(tf.reduce_mean(d_losses))
        self.wasserstein_tracker.update_state(tf.reduce_mean(ws))
        self.gp_tracker.update_state(tf.reduce_mean(gps))
        self.gen_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def make_optimizer(learning_rate: float = 1e-4, beta_1: float = 0.5, beta_2: float = 0.9):
    """Tables 4.1 / 4.3: Adam(η = 0.0001, β1 = 0.5, β2 = 0.9) for both generator and critic."""
    # epsilon 1e-8: the TF1 AdamOptimizer default used by the reference code (Keras defaults to 1e-7)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)
