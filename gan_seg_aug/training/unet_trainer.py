"""U-Net training on a real/generated mix, with the thesis' early-stopping rule (thesis §4.2).

Read top to bottom: the loss, the update step, the validation loss, then :func:`train_unet`.

* Loss -- thesis §2.6.3: per-pixel softmax cross-entropy, "computing the cross-entropy C_j for
  every target pixel j in the whole minibatch, the full cross-entropy loss is computed by
  averaging all cross-entropies for every pixel" (Eq. 2.42).  §4.2.1 says "As described in
  Section 2.6.3, we use the sigmoid cross-entropy loss"; the section it cites is the softmax one,
  and with two classes the two coincide (softmax CE over logits (a, b) is sigmoid CE on b - a),
  so softmax it is (docs/decisions.md §7).
* Optimiser -- Tables 4.2 / 4.4: Adam(eta = 0.0001, beta1 = 0.5, beta2 = 0.9).
* Minibatch -- paper Tables II / IV: ``n_real`` real pairs then ``n_generated`` pairs sampled on the
  fly from the fold's generator (:func:`gan_seg_aug.training.minibatches.make_train_dataset`).
* Early stopping -- thesis §4.2, see :mod:`gan_seg_aug.training.early_stopping`; the validation loss is the
  same loss over the whole *real* validation set, and the parameters at the minimum are restored
  at the end.

A run directory holds ``config.json``, ``history.csv`` (iteration, train_loss, val_loss),
``checkpoints/ckpt_NNNNNN.npz`` (weights, optimizer,
early-stopping state, history and the best weights so far), and, when finished,
``best.weights.h5`` and ``train_done.json``.  Everything is written atomically; an interrupted
run resumes from its last checkpoint, a finished one is reused.

Under ``--strategy`` the model and optimizer are built in the strategy's scope and every replica
takes its rows of each global minibatch; in a multi-worker cluster only the chief writes and every
worker resumes from the chief's checkpoints (:mod:`gan_seg_aug.training.distribute`).
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from gan_seg_aug.augment.settings import aug_identity
from gan_seg_aug.artifacts import atomic_write_csv, atomic_write_json, provenance, read_json
from gan_seg_aug.config import UNetConfig, task_spec, to_dict
from gan_seg_aug.layout import UNET_WEIGHTS
from gan_seg_aug.training.early_stopping import EarlyStopping, cap_leaves_run_unchanged
from gan_seg_aug.training.precision import set_precision
from gan_seg_aug.training.run_guard import refuse_other_run, release, writer_dir
from gan_seg_aug.training.checkpoints import read_latest, restore_unet, save_unet_checkpoint, save_weights

log = logging.getLogger(__name__)

# Settings that change how a step is executed, not what it computes: a run may resume with others.
EXECUTION_FIELDS = ("jit_compile",)
# Settings added after runs were made, with the value that reproduces what the code did before them.
LEGACY_DEFAULTS = {"sampling_bn": "moving"}

# Not stated in the thesis.  The authors' code derives from the WGAN-GP code (§4.2), which uses
# TF1's tf.train.AdamOptimizer and its default epsilon 1e-8 (Keras' default is 1e-7).
ADAM_EPSILON = 1e-8


def pixel_losses(labels, logits) -> tf.Tensor:
    """Thesis Eqs. 2.40-2.41: softmax cross-entropy of every pixel, ``[n, H, W]``, in float32 whatever
    the layers' precision (the logits are cast first).  Training and validation both reduce this."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                          logits=tf.cast(logits, tf.float32))


def pixel_cross_entropy(labels, logits) -> tf.Tensor:
    """Thesis Eq. 2.42: the mean of :func:`pixel_losses` over every pixel of the batch."""
    return tf.reduce_mean(pixel_losses(labels, logits))


def make_train_step(model, optimizer, *, strategy=None, jit_compile: bool = False):
    """The update step: ``step(images, labels) -> {"loss": the minibatch loss before the update}``.

    A ``tf.function`` closing over ``model`` and ``optimizer``; everything it measures is returned.
    The loss is Eq. 2.42's mean over every pixel of the minibatch, computed as the mean over images
    of each image's pixel mean (the same number, as every image has the same number of pixels) so
    that under a ``strategy`` (model and optimizer built in its scope) each replica can take its
    own rows and average over the GLOBAL batch; the optimizer sums the replicas' gradients
    (:mod:`gan_seg_aug.training.distribute`).  ``jit_compile``: XLA, one replica only (docs/decisions.md §9).
    """
    from gan_seg_aug.training.distribute import replica_slice

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if jit_compile and replicas > 1:
        raise ValueError("jit_compile=True needs a single replica: the optimiser's cross-replica all-reduce "
                         "cannot run inside an XLA cluster; use --strategy default or no XLA")

    def replica_step(images, labels):
        images, labels = replica_slice(images), replica_slice(labels)
        with tf.GradientTape() as tape:
            ce = pixel_losses(labels, model(images, training=True))
            loss = tf.nn.compute_average_loss(tf.reduce_mean(ce, axis=[1, 2]))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))  # sums over replicas
        return loss

    # autograph off: nothing here branches on tensors, and conversion costs seconds of tracing.
    @tf.function(autograph=False, reduce_retracing=True, jit_compile=True if jit_compile else None)
    def train_step(images, labels):
        if images.shape[0] is not None and images.shape[0] % replicas:
            raise ValueError(f"the minibatch of {images.shape[0]} pairs must be a multiple of the {replicas} "
                             f"replicas of the strategy")
        loss = strategy.run(replica_step, args=(images, labels))
        return {"loss": strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)}

    return train_step


def make_validation_loss(model, images, labels, batch_size: int):
    """``() -> float``: the training loss over the whole validation set (every pixel weighted
    equally, so a short last batch does not skew the mean)."""
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int32)
    if len(images) == 0:
        raise ValueError("the validation set is empty: early stopping (thesis §4.2) needs validation cases")

    # One trace for every batch size (the last batch is usually shorter).
    @tf.function(autograph=False, input_signature=[tf.TensorSpec((None, *images.shape[1:]), tf.float32),
                                                   tf.TensorSpec((None, *labels.shape[1:]), tf.int32)])
    def batch_sum(x, y):
        return tf.reduce_sum(pixel_losses(y, model(x, training=False)))

    def validation_loss() -> float:
        total = 0.0
        for s in range(0, len(images), batch_size):
            total += float(batch_sum(images[s:s + batch_size], labels[s:s + batch_size]))
        return total / labels.size

    return validation_loss


def train_unet(cfg: UNetConfig, data, fold: dict, out_dir, *, sampler=None, aug=None, strategy=None) -> dict:
    """Train one U-Net of paper Tables II / IV on ``fold`` and return the training summary.

    ``data``: a :class:`~gan_seg_aug.data.base.TaskData` (resized here to ``cfg.height x cfg.width``);
    ``fold``: a split fold with "train" and "val" case ids; ``sampler``: a
    :class:`~gan_seg_aug.training.minibatches.GeneratorSampler` (required when ``cfg.n_generated > 0``);
    ``aug``: :class:`~gan_seg_aug.augment.ops.AugParams` at the training resolution (required exactly
    when ``cfg.augment``); ``strategy``: from ``distribute.make_strategy`` (default: one device).  Returns ``{"iterations", "best_iteration", "best_val_loss",
    "stopped_by" ("early_stopping" | "max_iterations"), "history", ...}``.
    """
    from gan_seg_aug.training import distribute
    from gan_seg_aug.nets.networks import build_unet
    from gan_seg_aug.training.minibatches import make_train_dataset

    out = Path(out_dir)
    strategy = strategy or tf.distribute.get_strategy()
    _check_inputs(cfg, data, fold, sampler, aug)
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"the minibatch of {cfg.batch_size} pairs ({cfg.network_id}) cannot be split over the "
                         f"{strategy.num_replicas_in_sync} replicas of the strategy: use a divisor of it")
    # Non-chief workers of a cluster read the chief's directory and write to a scratch one.
    chief = distribute.is_chief(strategy)
    wdir = writer_dir(out, chief)
    identity = {"config": to_dict(cfg), "aug": aug_identity(aug)}
    if (out / "train_done.json").exists():
        _check_same_run(out, identity, wdir)
        summary = read_json(out / "train_done.json")
        log.info(f"[{cfg.network_id}] already trained ({summary['iterations']} iterations, best val loss "
                 f"{summary['best_val_loss']:.4f} at {summary['best_iteration']}): reusing {out}")
        return summary
    if (out / "config.json").exists():
        _check_same_run(out, identity, wdir)
    else:
        atomic_write_json(wdir / "config.json", {**identity, "fold": fold.get("fold"), "n_train": len(fold["train"]),
                                                 "n_val": len(fold["val"]), "execution": distribute.describe(strategy),
                                                 **provenance(profile=cfg.profile, dataset=data.source, seed=cfg.seed)})

    spec = task_spec(cfg.task)
    small = data.resized(cfg.height, cfg.width)
    train_idx, val_idx = small.indices(fold["train"]), small.indices(fold["val"])
    # cfg.precision "mixed_bfloat16": layers compute in bfloat16; variables, logits and loss stay float32.
    with set_precision(cfg.precision), strategy.scope():
        keras.utils.set_random_seed(cfg.seed)
        model = build_unet(cfg.task, height=cfg.height, width=cfg.width, width_div=cfg.unet_width_div)
        optimizer = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2,
                                          epsilon=ADAM_EPSILON)
        optimizer.build(model.trainable_variables)
    es = EarlyStopping(cfg.min_iterations, cfg.patience)
    it, history, best_weights = 0, [], None

    state = restore_unet(out, model, optimizer)
    if state is not None:
        it, history, best_weights = state["iteration"], state["history"], state["best_weights"]
        es = EarlyStopping.from_state(state["early_stopping"])
        log.info(f"[{cfg.network_id}] resuming from the checkpoint at iteration {it} (best val loss "
                 f"{es.best_loss:.4f} at {es.best_iteration})")
    resumed_from = it

    # A resumed run draws a fresh stream (seeded by the iteration) rather than replaying the first batches.
    dataset = make_train_dataset(small.images[train_idx], small.labels[train_idx], n_real=cfg.n_real,
                                 n_generated=cfg.n_generated, sampler=sampler, n_classes=spec.n_classes,
                                 aug=aug, seed=cfg.seed + 1_000_003 * it)
    batches = iter(dataset)
    step = make_train_step(model, optimizer, strategy=strategy, jit_compile=cfg.jit_compile)
    validation_loss = make_validation_loss(model, small.images[val_idx], small.labels[val_idx], cfg.batch_size)

    stopped_by = _stop_reason(cfg, es, it) if state is not None else None
    window, t_start = [], time.perf_counter()
    while stopped_by is None:
        images, labels = next(batches)
        window.append(float(step(images, labels)["loss"]))
        it += 1
        capped = bool(cfg.max_iterations) and it >= cfg.max_iterations
        if not (es.validation_due(it, cfg.val_every) or capped):
            continue
        val = validation_loss()
        if not math.isfinite(val):
            raise FloatingPointError(f"[{cfg.network_id}] validation loss is {val} at iteration {it}: training "
                                     f"diverged; the last good checkpoint is in {out / 'checkpoints'}")
        improved = es.update(it, val)
        if improved:
            best_weights = model.get_weights()
        history.append({"iteration": it, "train_loss": float(np.mean(window)), "val_loss": val})
        window = []
        stopped_by = _stop_reason(cfg, es, it)
        save_unet_checkpoint(wdir, model, optimizer, it, es, history, best_weights)
        _write_history(wdir, history)
        log.info(_progress(cfg, es, history[-1], improved, it - resumed_from, time.perf_counter() - t_start))

    if stopped_by == "max_iterations":
        log.info(f"[{cfg.network_id}] stopped by the profile's cap of {cfg.max_iterations} iterations, before "
                 f"the thesis rule would have (earliest rule stop: iteration {es.earliest_stop()})")
    model.set_weights(best_weights)  # thesis §4.2: the parameters at the validation-loss minimum
    save_weights(model, wdir / UNET_WEIGHTS)
    summary = {"network_id": cfg.network_id, "iterations": it, "best_iteration": es.best_iteration,
               "best_val_loss": es.best_loss, "stopped_by": stopped_by, "earliest_rule_stop": es.earliest_stop(),
               "min_iterations": cfg.min_iterations, "patience": cfg.patience, "val_every": cfg.val_every,
               "max_iterations": cfg.max_iterations, "resumed_from": resumed_from,
               "seconds_this_session": round(time.perf_counter() - t_start, 1), "history": history}
    _write_history(wdir, history)
    atomic_write_json(wdir / "train_done.json", {**summary, **provenance(profile=cfg.profile, dataset=data.source,
                                                                        seed=cfg.seed, iterations=it)})
    # Checkpoints only serve resuming; train_done.json + best.weights.h5 are the result.
    shutil.rmtree(wdir / "checkpoints", ignore_errors=True)
    release(wdir, out)
    log.info(f"[{cfg.network_id}] done: {it} iterations ({stopped_by}), best val loss {es.best_loss:.4f} at "
             f"iteration {es.best_iteration}; weights restored from there -> {out / UNET_WEIGHTS}")
    return summary


def _write_history(out: Path, history: list):
    """``history.csv``: one row per validation; train_loss is the mean minibatch loss since the last one."""
    atomic_write_csv(out / "history.csv", pd.DataFrame(history, columns=["iteration", "train_loss", "val_loss"]))


def _stop_reason(cfg, es: EarlyStopping, it: int):
    if es.last_iteration == it and es.should_stop(it):
        return "early_stopping"
    if cfg.max_iterations and it >= cfg.max_iterations:
        return "max_iterations"
    return None


def _progress(cfg, es, row, improved, done_here, seconds) -> str:
    rate = done_here / seconds if seconds > 0 else float("nan")
    target = es.earliest_stop()
    if cfg.max_iterations:
        target = min(target, cfg.max_iterations)
    eta = (target - row["iteration"]) / rate if rate > 0 else float("nan")
    eta_text = f"{eta / 60:.1f} min" if math.isfinite(eta) else "?"
    return (f"[{cfg.network_id}] it {row['iteration']:>6}  loss {row['train_loss']:.4f}  val {row['val_loss']:.4f}"
            f"{' *' if improved else '  '}  best {es.best_loss:.4f} @ {es.best_iteration}  {rate:.2f} it/s  "
            f"earliest stop {target} (~{eta_text})")


def _check_inputs(cfg, data, fold, sampler, aug):
    if data.task != cfg.task:
        raise ValueError(f"config is for {cfg.task!r} but the data is {data.task!r}")
    for key in ("train", "val"):
        if key not in fold:
            raise ValueError(f"fold has no {key!r} case list (keys: {sorted(fold)}); pass a fold from splits.fold_of")
    if not fold["val"]:
        raise ValueError("fold['val'] is empty: early stopping (thesis §4.2) needs a validation set")
    if cfg.n_real > 0 and not fold["train"]:
        raise ValueError(f"fold['train'] is empty but the mix {cfg.network_id} asks for {cfg.n_real} real pairs")
    if cfg.n_generated > 0 and sampler is None:
        raise ValueError(f"mix {cfg.network_id} needs {cfg.n_generated} generated pairs per minibatch: pass "
                         f"sampler= (a GeneratorSampler of the fold's GAN)")
    if (aug is not None) != cfg.augment:
        raise ValueError(f"cfg.augment={cfg.augment} but aug={aug!r}: pass AugParams exactly when augmenting")
    if cfg.val_every < 1:
        raise ValueError(f"val_every must be >= 1, got {cfg.val_every}")


def _check_same_run(out: Path, identity: dict, wdir: Path):
    """Refuse a directory holding another run.  A changed safety cap is accepted when the run trained (or,
    unfinished, is training) exactly as it would under the new one; an unfinished run then carries on under
    the new cap, and its config.json records the old one."""
    saved = read_json(out / "config.json")
    saved_cfg = saved.get("config") or {}
    wanted = {k: v for k, v in identity["config"].items() if k not in EXECUTION_FIELDS}
    old_cap, new_cap = saved_cfg.get("max_iterations", wanted["max_iterations"]), wanted["max_iterations"]
    refuse_other_run(out, {**saved_cfg, "aug": saved.get("aug"), "max_iterations": new_cap},
                     {**wanted, "aug": identity["aug"]}, what="U-Net", legacy=LEGACY_DEFAULTS)
    if old_cap == new_cap:
        return
    if (out / "train_done.json").exists():
        done = read_json(out / "train_done.json")
        where, stopped_by = done["iterations"], done["stopped_by"]
    else:
        latest = read_latest(out / "checkpoints", "unet")
        where, stopped_by = (latest[1] if latest else 0), None
    if not cap_leaves_run_unchanged(old_cap, new_cap, iterations=where, stopped_by=stopped_by):
        raise ValueError(f"{out} holds a U-Net run that {'ended' if stopped_by else 'is'} at iteration {where} "
                         f"under a cap of {old_cap} iterations; the cap is now {new_cap}, under which it would have "
                         f"trained differently: move that directory away to train it again")
    if stopped_by is None:
        atomic_write_json(wdir / "config.json", {**saved, "config": {**saved_cfg, "max_iterations": new_cap},
                                                 "max_iterations_before": old_cap})
        log.info(f"{out}: the safety cap is now {new_cap} iterations (was {old_cap}); the run carries on under it")


def load_unet(run_dir):
    """A trained U-Net run's network: rebuilt from its ``config.json``, ``best.weights.h5`` loaded.
    The one way to get a model back from a U-Net run directory (evaluation, quality report, figures)."""
    from gan_seg_aug.nets.networks import build_unet

    run_dir = Path(run_dir)
    weights = run_dir / UNET_WEIGHTS
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: not found (is {run_dir} a trained U-Net run?)")
    cfg = read_json(run_dir / "config.json")["config"]
    model = build_unet(cfg["task"], height=cfg["height"], width=cfg["width"], width_div=cfg["unet_width_div"])
    model.load_weights(str(weights))
    return model
