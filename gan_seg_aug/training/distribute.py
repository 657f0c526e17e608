"""``--strategy default|mirrored|multiworker``: running the training steps under tf.distribute.

The thesis trained on one GPU (§4.2, chapter 5: "NVIDIA Tesla K80").  Data parallelism must not
change what is computed, so the steps (``gan.WGANGP.train_step``, ``train.make_train_step``) are
written so that N replicas give the single-device result for the same *global* minibatch (up to
float summation order); this module holds what they share:

* Every replica receives the whole global minibatch -- and the noise ``z``, ``alpha`` -- and keeps
  its own rows ``[r B/N, (r+1) B/N)`` (:func:`replica_slice`).  The noise is drawn once for the
  global batch (``gan.draw_noise``, stateless in ``(seed, iteration)``) and does not depend on the
  number of replicas.  Multi-worker: every worker builds the same global batch (the GAN's real
  minibatches are a function of ``(seed, iteration)``; the U-Net's come from the same seeded
  pipeline) and keeps its rows.
* Losses are per-example and averaged over the GLOBAL batch (``tf.nn.compute_average_loss``), so the
  gradients summed by the optimizer's all-reduce (Keras sums replica gradients in
  ``apply_gradients``) are the gradients of the global mean.
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
* Multi-worker runs share one run directory (a shared filesystem): only the chief writes
  (:func:`is_chief`); every worker resumes from the chief's checkpoints.

Models and optimisers must be built under ``strategy.scope()`` (and ``optimizer.build(vars)``
called there).  ``MultiWorkerMirroredStrategy`` reads ``TF_CONFIG`` and must be created before
any other TensorFlow operation of the program, so the commands create the strategy first.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from gan_seg_aug.config import STRATEGIES  # noqa: F401  (the owner of the flag's choices)


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


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on the non-chief workers of a
    multi-worker cluster (the chief is task "chief", or worker 0 when the cluster has none)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and int(resolver.task_id) == 0 and "chief" not in cluster


def barrier(strategy) -> None:
    """Wait until every worker of a multi-worker cluster got here (a one-number all-reduce), e.g. until
    the chief has written what the others read next.  Nothing to wait for in one process."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def describe(strategy=None) -> dict:
    """What a run records about its strategy (config.json / summaries); None = the default one."""
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "multiworker"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "mirrored"
    else:
        name = "default"
    out = {"strategy": name, "replicas": int(strategy.num_replicas_in_sync)}
    resolver = getattr(strategy, "cluster_resolver", None)
    if name == "multiworker" and resolver is not None and resolver.task_type:
        out["workers"] = sum(len(v) for k, v in resolver.cluster_spec().as_dict().items() if k in ("chief", "worker"))
    return out
