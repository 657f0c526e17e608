"""``--strategy default|mirrored|multiworker``: the WGAN-GP iteration and the U-Net step under tf.distribute.

The thesis trained on one GPU (§4.2, chapter 5: "NVIDIA Tesla K80").  Data parallelism must not
change what is computed, so every step here is written so that N replicas give the single-device
result for the same *global* minibatch (up to float summation order):

* Every replica receives the whole global minibatch -- and the noise ``z``, ``alpha`` -- and keeps
  its own rows ``[r B/N, (r+1) B/N)`` (:func:`replica_slice`).  The noise is therefore drawn once
  for the global batch (:func:`draw_gan_noise`, stateless in ``(seed, iteration)``) and does not
  depend on the number of replicas.  Multi-worker: every worker builds the same global batch
  (the GAN's real minibatches are a function of ``(seed, iteration)`` already) and keeps its rows.
* Losses are per-example and scaled by the GLOBAL batch size
  (``tf.nn.compute_average_loss(per_example, global_batch_size=B)``), so the gradients summed by
  the optimizer's all-reduce (Keras sums replica gradients in ``apply_gradients``) are the
  gradients of the global mean.
* Gradient penalty (thesis Eq. 3.12-3.13): one ``alpha`` per sample, each replica computes the
  per-sample gradient norms of its rows, and the penalty enters the per-example loss, i.e. the
  mean runs over the global batch.
* Batch normalisation (generator; critic with ``norm="batch"``): per-replica statistics would
  differ from the single-device ones, so :func:`synchronize_batch_norm` switches BN to statistics
  all-reduced over the replicas.  Because TF's all-reduce gradient is itself an all-reduce, the
  weight gradients and the penalty's input gradient through synchronised BN are the single-device
  ones too, second-order terms included.  (Synchronised BN computes var = E[x^2] - mu^2; Keras'
  default BN uses ``tf.nn.moments``, whose ``stop_gradient(mean)`` leaves first-order gradients
  unchanged but drops a second-order term of the penalty's weight gradient -- a few % on a tiny
  critic.  docs/decisions.md §9.)

Models and optimisers must be built under ``strategy.scope()`` (and ``optimizer.build(vars)``
called there).  ``MultiWorkerMirroredStrategy`` reads ``TF_CONFIG`` and must be created before
any other TensorFlow operation of the program.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from .gan import gradient_penalty

STRATEGIES = ("default", "mirrored", "multiworker")


def configure_logical_cpus(n: int) -> list:
    """Split the CPU into ``n`` logical devices (``/cpu:0`` .. ``/cpu:{n-1}``) to test multi-replica
    code without GPUs.  Must run before TensorFlow initialises its devices -- in practice at the
    top of a fresh process (the tests run it in a subprocess)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"logical_cpus must be a whole number >= 1, got {n!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as e:
        if len(tf.config.list_logical_devices("CPU")) == n:
            return tf.config.list_logical_devices("CPU")
        raise RuntimeError(f"cannot create {n} logical CPU devices: TensorFlow has already initialised its "
                           f"devices in this process ({e}); call make_strategy(..., logical_cpus={n}) first "
                           f"thing in a fresh process") from e
    return tf.config.list_logical_devices("CPU")


def make_strategy(name: str = "default", logical_cpus: int = 0) -> tf.distribute.Strategy:
    """The ``--strategy`` of a run.

    ``default``: TF's default (no-op) strategy, one device.  ``mirrored``: one machine, all GPUs
    (or, with ``logical_cpus=N``, N logical CPU devices -- for testing).  ``multiworker``:
    ``MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG`` (one worker when unset).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown --strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    if logical_cpus:
        configure_logical_cpus(logical_cpus)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        # All-reduce on CPU devices: NCCL is GPU-only.
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return
    try:
        cfg = json.loads(raw)
        task = cfg["task"]
        members = cfg["cluster"].get(task["type"]) if task["type"] in ("worker", "chief") else None
        if not members or not 0 <= int(task["index"]) < len(members):
            raise ValueError(f"task {task} is not one of the cluster's workers / chief")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--strategy multiworker: TF_CONFIG is not a valid cluster description ({e}); expected "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}') from e


def synchronize_batch_norm(*models) -> int:
    """Make every BatchNormalization layer of ``models`` use statistics over all replicas
    (Keras ``synchronized=True``, read at call time); returns how many layers were switched.
    Needed for single-device-equivalent training of BN networks under a multi-replica strategy."""
    n = 0
    for model in models:
        for layer in _walk(model):
            if hasattr(layer, "synchronized") and type(layer).__name__ == "BatchNormalization":
                layer.synchronized = True
                n += 1
    return n


def _walk(model):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk(layer)


def replica_slice(x):
    """This replica's rows of a global-batch tensor: ``[r B/N, (r+1) B/N)``, r = replica id."""
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync
    if n == 1:
        return x
    per = tf.shape(x)[0] // n
    r = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    return x[r * per:(r + 1) * per]


def _check_batch(strategy, global_batch_size: int, what: str) -> int:
    n = strategy.num_replicas_in_sync
    if global_batch_size < n or global_batch_size % n:
        raise ValueError(f"{what}: the global batch of {global_batch_size} must be a multiple of the "
                         f"{n} replicas of the strategy")
    return int(global_batch_size)


def _check_jit(strategy, jit_compile: bool) -> None:
    if jit_compile and strategy.num_replicas_in_sync > 1:
        raise ValueError("jit_compile=True is only supported with one replica (the optimizer's cross-replica "
                         "all-reduce cannot run inside an XLA cluster); use --strategy default or no XLA")


def _reduce_sum(strategy, per_replica: dict) -> dict:
    return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}


def distributed_unet_step(strategy, model, optimizer, *, global_batch_size: int, jit_compile: bool = False):
    """U-Net update under ``strategy``: ``step(images [B,H,W,C], labels [B,H,W]) -> {"loss"}``.

    Same loss as ``train.pixel_cross_entropy`` (thesis Eq. 2.42, the mean over every pixel of the
    minibatch): the per-example loss is the pixel mean of one image (every image has the same
    number of pixels), averaged over the global batch.  The returned loss is the global mean
    before the update.
    """
    global_batch_size = _check_batch(strategy, global_batch_size, "distributed_unet_step")
    _check_jit(strategy, jit_compile)

    def replica_fn(images, labels):
        images, labels = replica_slice(images), replica_slice(labels)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
            per_example = tf.reduce_mean(ce, axis=[1, 2])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))  # sums over replicas
        return {"loss": loss}

    @tf.function(jit_compile=jit_compile or None)
    def step(images, labels):
        return _reduce_sum(strategy, strategy.run(replica_fn, args=(images, labels)))

    return step


def draw_gan_noise(seed: int, iteration: int, *, n_critic: int, batch_size: int, latent_dim: int):
    """The noise of one WGAN-GP iteration for the GLOBAL batch (thesis Algorithm 4): ``z_critic
    [n_critic, B, latent] ~ N(0, 1)``, ``alpha [n_critic, B, 1, 1, 1] ~ U[0, 1]``, ``z_gen [B, latent]``.
    Stateless in ``(seed, iteration)``: identical on every worker and for any replica count."""
    keys = tf.random.experimental.stateless_split(tf.constant([int(seed), int(iteration)], tf.int64), 3)
    z_critic = tf.random.stateless_normal([n_critic, batch_size, latent_dim], keys[0])
    alpha = tf.random.stateless_uniform([n_critic, batch_size, 1, 1, 1], keys[1])
    z_gen = tf.random.stateless_normal([batch_size, latent_dim], keys[2])
    return z_critic, alpha, z_gen


def distributed_gan_iteration(strategy, generator, critic, g_optimizer, d_optimizer, *, global_batch_size: int,
                              n_critic: int = 5, gp_lambda: float = 10.0, jit_compile: bool = False):
    """One WGAN-GP iteration (thesis Algorithm 4) under ``strategy``.

    Returns ``iteration(real_batches, z_critic, alpha, z_gen) -> {"critic_loss", "wasserstein",
    "gp", "gen_loss"}`` (global means; the first three averaged over the critic steps), all
    arguments GLOBAL: ``real_batches [n_critic, B, H, W, C]`` (a fresh real minibatch per critic
    step), noise as from :func:`draw_gan_noise`.  Critic loss per example i (negated Eq. 3.12):
    ``D(fake_i) - D(real_i) + lambda (||grad D(x^_i)|| - 1)^2``; generator loss ``-D(G(z_i))``
    (Eq. 3.15).  The same computation as ``gan.WGANGP.train_step`` except that the noise is an input.
    """
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    global_batch_size = _check_batch(strategy, global_batch_size, "distributed_gan_iteration")
    _check_jit(strategy, jit_compile)
    lam = float(gp_lambda)

    def average(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

    def critic_update(real, z, alpha):
        real = tf.cast(real, tf.float32)
        fake = tf.cast(generator(z, training=True), tf.float32)  # no gradient to G here
        with tf.GradientTape() as tape:
            d_real = tf.cast(critic(real, training=True), tf.float32)[:, 0]
            d_fake = tf.cast(critic(fake, training=True), tf.float32)[:, 0]
            _, norms = gradient_penalty(lambda x: critic(x, training=True), real, fake, alpha)
            gp = tf.square(norms - 1.0)
            loss = average(d_fake - d_real + lam * gp)
        grads = tape.gradient(loss, critic.trainable_variables)
        d_optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        return loss, average(d_real - d_fake), average(gp)

    def generator_update(z):
        with tf.GradientTape() as tape:
            d_fake = tf.cast(critic(generator(z, training=True), training=True), tf.float32)[:, 0]
            loss = average(-d_fake)
        grads = tape.gradient(loss, generator.trainable_variables)
        g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
        return loss

    def replica_fn(real_batches, z_critic, alpha, z_gen):
        sums = {"critic_loss": 0.0, "wasserstein": 0.0, "gp": 0.0}
        for i in range(n_critic):  # unrolled: n_critic is a small constant
            loss, w, gp = critic_update(replica_slice(real_batches[i]), replica_slice(z_critic[i]),
                                        replica_slice(alpha[i]))
            sums["critic_loss"] += loss / n_critic
            sums["wasserstein"] += w / n_critic
            sums["gp"] += gp / n_critic
        return {**sums, "gen_loss": generator_update(replica_slice(z_gen))}

    @tf.function(jit_compile=jit_compile or None)
    def iteration(real_batches, z_critic, alpha, z_gen):
        shape = real_batches.shape
        if shape.rank != 5 or shape[0] not in (None, n_critic) or shape[1] not in (None, global_batch_size):
            raise ValueError(f"distributed_gan_iteration: real_batches must be [n_critic={n_critic}, "
                             f"B={global_batch_size}, H, W, C], got {shape}")
        return _reduce_sum(strategy, strategy.run(replica_fn, args=(real_batches, z_critic, alpha, z_gen)))

    return iteration
