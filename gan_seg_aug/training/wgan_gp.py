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


def interpolate(real, fake, alpha):
    """x̂ = α·real + (1 − α)·fake, one α per sample (thesis Eq. 3.13), in float32."""
    alpha = tf.cast(alpha, tf.float32)
    return alpha * tf.convert_to_tensor(real, tf.float32) + (1.0 - alpha) * tf.cast(fake, tf.float32)


def penalty_norms(critic_fn, x_hat):
    """Per-sample ‖∇_x̂ Σ D(x̂)‖₂ over all pixels and channels; ``critic_fn(x_hat)`` returns
    ``(scores of x̂ [B], extras)`` so a critic called on a larger batch can hand back its other scores."""
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores, extras = critic_fn(x_hat)
        scores = tf.cast(scores, tf.float32)
    # ZERO: a critic that ignores its input has gradient 0, not None
    grads = tf.cast(tape.gradient(scores, x_hat, unconnected_gradients=tf.UnconnectedGradients.ZERO), tf.float32)
    axes = list(range(1, len(x_hat.shape)))
    return tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + GP_EPS), extras


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
    norms, _ = penalty_norms(lambda x: (critic_fn(x), None), interpolate(real, fake, alpha))
    return tf.reduce_mean(tf.square(norms - 1.0)), norms


def critic_scores(critic, real, fake, alpha, norm: str):
    """``(D(real), D(fake), ‖∇D(x̂)‖)`` per sample, with the critic's batch statistics as ``norm`` says
    (docs/decisions.md §3; all in training mode, as the reference code):

    * ``batch`` / ``layer`` / ``none``: three calls, on real, fake and x̂ -- with BN, three differently
      normalised functions, of which the penalty constrains only the one that scores x̂;
    * ``batch-joint``: one call on ``[real; fake; x̂]``, one batch statistic for all three;
    * ``batch-realfake``: one call on ``[real; fake; x̂]``, statistics of real + fake applied to x̂ too.
    """
    from gan_seg_aug.nets.networks import batch_stats_from

    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    x_hat = interpolate(real, fake, alpha)
    if norm not in ("batch-joint", "batch-realfake"):
        d_real = tf.cast(critic(real, training=True), tf.float32)[:, 0]
        d_fake = tf.cast(critic(fake, training=True), tf.float32)[:, 0]
        norms, _ = penalty_norms(lambda x: (critic(x, training=True)[:, 0], None), x_hat)
        return d_real, d_fake, norms
    b = tf.shape(real)[0]

    def joint(x):
        with batch_stats_from(critic, 2 * b if norm == "batch-realfake" else None):
            scores = tf.cast(critic(tf.concat([real, fake, x], axis=0), training=True), tf.float32)[:, 0]
        return scores[2 * b:], (scores[:b], scores[b:2 * b])

    norms, (d_real, d_fake) = penalty_norms(joint, x_hat)
    return d_real, d_fake, norms


def generator_scores(critic, fake, real, alpha, norm: str):
    """``D(G(z))`` for the generator step, normalised as the critic step normalised it: alone for the
    three-call variants, with the real minibatch (and x̂ for ``batch-joint``) for the joint ones."""
    from gan_seg_aug.nets.networks import batch_stats_from

    fake = tf.cast(fake, tf.float32)
    if norm not in ("batch-joint", "batch-realfake"):
        return tf.cast(critic(fake, training=True), tf.float32)[:, 0]
    real = tf.cast(real, tf.float32)
    b = tf.shape(real)[0]
    parts = [real, fake] + ([interpolate(real, fake, alpha)] if norm == "batch-joint" else [])
    with batch_stats_from(critic, None):
        scores = tf.cast(critic(tf.concat(parts, axis=0), training=True), tf.float32)[:, 0]
    return scores[b:2 * b]


def draw_noise(seed, iteration, *, n_critic: int, batch_size, latent_dim: int):
    """The noise of WGAN-GP iteration ``iteration`` (thesis Algorithm 4) for the GLOBAL minibatch:
    ``z_critic [n_critic, B, latent] ~ N(0, 1)`` (Table 4.1: z ~ N(0, 1)), ``alpha [n_critic, B, 1, 1, 1]
    ~ U[0, 1]`` (one per sample, Eq. 3.13) and ``z_gen [B, latent]``.

    Stateless in ``(seed, iteration)``: a resumed run draws what an uninterrupted one would, and every
    replica / worker of a distributed run draws the same global noise whatever their number.

    >>> a = draw_noise(3, 10, n_critic=5, batch_size=4, latent_dim=8)
    >>> [tuple(t.shape) for t in a]
    [(5, 4, 8), (5, 4, 1, 1, 1), (4, 8)]
    >>> bool(tf.reduce_all(a[1] == draw_noise(3, 10, n_critic=5, batch_size=4, latent_dim=8)[1]))
    True
    """
    philox = "philox"  # named: "auto_select" may choose another generator under XLA or on another device
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(iteration, tf.int64)])
    keys = tf.random.experimental.stateless_split(key, 3, alg=philox)
    z_critic = tf.random.stateless_normal([n_critic, batch_size, latent_dim], keys[0], alg=philox)
    alpha = tf.random.stateless_uniform([n_critic, batch_size, 1, 1, 1], keys[1], alg=philox)
    z_gen = tf.random.stateless_normal([batch_size, latent_dim], keys[2], alg=philox)
    return z_critic, alpha, z_gen


class WGANGP(keras.Model):
    """Generator + critic trained with WGAN-GP (thesis Algorithm 4), keras-io custom ``train_step`` style.

    ``train_step(real_batches)`` runs ONE iteration: ``n_critic`` critic updates, each on its own
    fresh real minibatch ``real_batches[i]`` (shape ``[n_critic, B, H, W, C]``), then one generator
    update.  The noise (z ~ N(0, 1), Table 4.1; alpha ~ U[0, 1]) of iteration ``i`` is
    :func:`draw_noise` ``(seed, i)``; ``self.iteration`` counts the iterations done and is restored
    with a checkpoint, so a resumed run continues the same trajectory.

    Both networks run in training mode, as in the reference code (its batch norm always uses batch
    statistics).  ``critic_norm`` says how the critic sees its minibatches (:func:`critic_scores`):
    three separate calls (``batch``, ``layer``, ``none``) or one joint call (``batch-joint``,
    ``batch-realfake``); the generator step then scores G(z) beside the last critic step's real
    minibatch, so both steps train against the same normalisation (docs/decisions.md §3).

    ``strategy``: the ``tf.distribute`` strategy the networks and optimisers were built under (their
    ``scope()``); ``None`` = the default one-device strategy.  Every replica receives the whole
    global minibatch and noise and keeps its own rows; losses are per example and averaged over the
    GLOBAL batch (``tf.nn.compute_average_loss``), so the gradients the optimiser sums over the
    replicas are those of the global mean, gradient penalty included (one alpha and one gradient
    norm per sample).  Batch norm must be synchronised (``distribute.synchronize_batch_norm``) for the
    single-device result.  ``jit_compile``: XLA for the whole iteration (one replica only).
    ``train_step`` must be called in cross-replica context (our loop; ``fit`` under the default strategy).
    """

    def __init__(self, generator, critic, *, latent_dim: int = 128, gp_lambda: float = 10.0,
                 n_critic: int = 5, seed: int = 0, strategy=None, jit_compile: bool = False,
                 critic_norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.generator = generator
        self.critic = critic
        self.latent_dim = int(latent_dim)
        self.gp_lambda = float(gp_lambda)
        self.n_critic = int(n_critic)
        self.seed = int(seed)
        self.critic_norm = str(critic_norm)
        self.strategy = strategy or tf.distribute.get_strategy()
        replicas = self.strategy.num_replicas_in_sync
        if critic_norm == "batch-realfake" and replicas > 1:
            raise ValueError("--critic-norm batch-realfake needs a single replica (its statistics are not "
                             "synchronised across replicas); use --strategy default or another critic norm")
        if jit_compile and replicas > 1:
            raise ValueError("jit_compile=True needs a single replica: the optimiser's cross-replica all-reduce "
                             "cannot run inside an XLA cluster; use --strategy default or no XLA")
        self.jit_compile_iteration = bool(jit_compile)
        with self.strategy.scope():
            self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="wgan_gp_iteration")
        # One replica: the critic step is a function of its own, kept out-of-line, so the iteration
        # calls one traced graph n_critic times instead of optimising n_critic inlined copies (first
        # call ~6x faster).  Several replicas: nested tf.functions may not hold the optimiser's
        # all-reduce, and XLA wants one cluster, so it is inlined there.
        self._critic_fn = self.critic_step if replicas > 1 or jit_compile else \
            tf.function(self.critic_step, experimental_attributes={"_noinline": True})
        # XLA compiles the update only: its random-number kernels would draw other noise than draw_noise's.
        self._update_fn = tf.function(self._update, jit_compile=True) if jit_compile else self._update
        self._iteration_fn = tf.function(self._iteration)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.gen_loss_tracker = keras.metrics.Mean(name="gen_loss")

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Build the slots now, eagerly: variables must not be created inside a traced tf.function.
        with self.strategy.scope():
            g_optimizer.build(self.generator.trainable_variables)
            d_optimizer.build(self.critic.trainable_variables)

    @property
    def metrics(self):
        return [self.critic_loss_tracker, self.wasserstein_tracker, self.gp_tracker, self.gen_loss_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def critic_step(self, real, z, alpha):
        """One critic update on this replica's rows: real pairs, their z and alpha (Algorithm 4,
        Eq. 3.12-3.13); returns ``(critic_loss, wasserstein, gp)`` as this replica's share of the
        global means (summed over replicas they are the global means)."""
        fake = tf.cast(self.generator(z, training=True), tf.float32)  # no gradient to G in this step
        with tf.GradientTape() as tape:
            d_real, d_fake, norms = critic_scores(self.critic, real, fake, alpha, self.critic_norm)
            gp = tf.square(norms - 1.0)
            loss = tf.nn.compute_average_loss(d_fake - d_real + self.gp_lambda * gp)
        grads = tape.gradient(loss, self.critic.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))  # sums over replicas
        return loss, tf.nn.compute_average_loss(d_real - d_fake), tf.nn.compute_average_loss(gp)

    def generator_step(self, z, real=None, alpha=None):
        """One generator update, −E[D(G(z))] (Eq. 3.15), on this replica's rows of z; returns its
        share of the generator loss.  ``real`` / ``alpha``: the minibatch the joint critic variants
        score G(z) beside (:func:`generator_scores`)."""
        with tf.GradientTape() as tape:
            d_fake = generator_scores(self.critic, self.generator(z, training=True), real, alpha, self.critic_norm)
            loss = tf.nn.compute_average_loss(-d_fake)
        grads = tape.gradient(loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return loss

    def _replica_iteration(self, real_batches, z_critic, alpha, z_gen):
        from gan_seg_aug.training.distribute import replica_slice

        sums = {"critic_loss": 0.0, "wasserstein": 0.0, "gp": 0.0}
        for i in range(self.n_critic):  # unrolled: n_critic is a small constant (5)
            parts = self._critic_fn(replica_slice(real_batches[i]), replica_slice(z_critic[i]),
                                    replica_slice(alpha[i]))
            for key, value in zip(sums, parts):
                sums[key] += value / self.n_critic
        gen_loss = self.generator_step(replica_slice(z_gen), replica_slice(real_batches[self.n_critic - 1]),
                                       replica_slice(alpha[self.n_critic - 1]))
        return {**sums, "gen_loss": gen_loss}

    def _iteration(self, real_batches):
        batch = tf.shape(real_batches)[1]
        iteration = self.iteration.assign_add(1)
        noise = draw_noise(self.seed, iteration, n_critic=self.n_critic, batch_size=batch, latent_dim=self.latent_dim)
        return self._update_fn(real_batches, *noise)

    def _update(self, real_batches, z_critic, alpha, z_gen):
        if self.strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
            # the default strategy: nothing to distribute (and keras fit() is already in its replica context)
            return self._replica_iteration(real_batches, z_critic, alpha, z_gen)
        per_replica = self.strategy.run(self._replica_iteration, args=(real_batches, z_critic, alpha, z_gen))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    def train_step(self, data):
        """One WGAN-GP iteration from ``data`` = ``[n_critic, B, H, W, C]`` real pairs in [-1, 1]."""
        real_batches = data[0] if isinstance(data, (tuple, list)) else data
        shape = real_batches.shape
        replicas = self.strategy.num_replicas_in_sync
        if shape.rank != 5 or shape[0] not in (None, self.n_critic):
            raise ValueError(f"train_step expects [n_critic={self.n_critic}, B, H, W, C] real pairs, "
                             f"got shape {shape}")
        if shape[1] is not None and shape[1] % replicas:
            raise ValueError(f"the GAN minibatch of {shape[1]} pairs must be a multiple of the {replicas} "
                             f"replicas of the strategy")
        out = self._iteration_fn(real_batches)
        self.critic_loss_tracker.update_state(out["critic_loss"])
        self.wasserstein_tracker.update_state(out["wasserstein"])
        self.gp_tracker.update_state(out["gp"])
        self.gen_loss_tracker.update_state(out["gen_loss"])
        return {m.name: m.result() for m in self.metrics}


def make_optimizer(learning_rate: float = 1e-4, beta_1: float = 0.5, beta_2: float = 0.9):
    """Tables 4.1 / 4.3: Adam(η = 0.0001, β1 = 0.5, β2 = 0.9) for both generator and critic."""
    # epsilon 1e-8: the TF1 AdamOptimizer default used by the reference code (Keras defaults to 1e-7)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)
