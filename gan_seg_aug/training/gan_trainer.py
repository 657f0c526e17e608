"""Train one fold's pair GAN, top to bottom (thesis §4.2, §5.1.2, §5.2.2; paper §III, §V).

§4.2: "we train GANs for every training set of this dataset [...] Finally, we take the
fully-trained generator network, and use it directly as an input to a U-Net".  §5.1.2 / paper
§V-A: "every GAN was trained for a fixed number of 10000 iterations"; §5.2.2 the same for
Cityscapes.  One iteration = ``n_critic`` (5) critic updates, each on a FRESH real minibatch,
plus one generator update (thesis Algorithm 4), so it consumes ``5 x batch`` real pairs.

A run directory holds ``config.json`` (settings + provenance), ``checkpoints/ckpt_XXXXXX.npz``
(last two), ``samples/iter_XXXXXX.png``, ``tensorboard/`` and, once finished,
``generator.weights.h5`` and ``done.json``.  Everything is written atomically.  Interrupted runs
resume from the last checkpoint and end with the same weights as an uninterrupted run: the real
minibatches and the noise of iteration ``i`` are functions of ``(seed, i)`` only.

Under a ``tf.distribute`` strategy (``--strategy``) the networks and optimisers are built in its
scope, batch norm is synchronised over the replicas, and each replica takes its rows of the same
global minibatch (:mod:`gan_seg_aug.training.distribute`).  In a multi-worker cluster only the chief writes;
every worker resumes from the chief's checkpoints, so ``--out`` must be on a shared filesystem.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from gan_seg_aug import layout
from gan_seg_aug.artifacts import atomic_write_bytes, atomic_write_json, provenance, read_json
from gan_seg_aug.config import GANConfig, to_dict, task_spec
from gan_seg_aug.data.mask_encoding import encode_mask
from gan_seg_aug.training.checkpoints import restore_gan, save_gan_checkpoint
from gan_seg_aug.training.gan_monitor import TrainingCurve, sample_grid
from gan_seg_aug.training.run_guard import refuse_other_run, release, writer_dir

# Fields that may change between sessions of one run without changing its trajectory.
RESUMABLE_FIELDS = ("iterations", "sample_every", "checkpoint_every", "jit_compile", "execution", "data_dir", "fold",
                    "masks_dir")
# How the noise of an iteration is drawn (gan.draw_noise); runs of older code drew it otherwise.
NOISE_SCHEME = "stateless(seed, iteration)"
N_FIXED_SAMPLES = 16
# A full-size SCR iteration on this 2-core CPU (benchmarks/bench_gan.py): 14-16 s quiet, ~25 s when shared.
PAPER_CPU_SECONDS_PER_ITER = 15.0

log = logging.getLogger(__name__)


def real_minibatch_indices(n_cases: int, iteration: int, *, n_critic: int, batch_size: int, seed: int) -> np.ndarray:
    """Case indices ``[n_critic, batch_size]`` of iteration ``iteration`` (1-based).

    Minibatches walk through shuffled epochs; epoch ``e``'s order depends only on ``(seed, e)``,
    so any iteration's batches can be recomputed after a restart.  Every case is used equally often.

    >>> a = real_minibatch_indices(10, 1, n_critic=5, batch_size=2, seed=0)
    >>> a.shape, sorted(a.ravel().tolist()) == list(range(10))
    ((5, 2), True)
    >>> bool((real_minibatch_indices(10, 3, n_critic=5, batch_size=2, seed=0) != a).any())
    True
    """
    first = (iteration - 1) * n_critic * batch_size
    pos = np.arange(first, first + n_critic * batch_size)
    epoch = pos // n_cases
    out = np.empty_like(pos)
    for e in np.unique(epoch):
        perm = np.random.default_rng([seed, 1, int(e)]).permutation(n_cases)
        sel = epoch == e
        out[sel] = perm[pos[sel] % n_cases]
    return out.reshape(n_critic, batch_size)


class RealPairs:
    """The fold's real image-segmentation pairs in [-1, 1] (§4.1: image and mask concatenated along
    channels), gathered per minibatch so the dataset is never duplicated in memory."""

    def __init__(self, cfg: GANConfig, data, train_ids):
        if data.task != cfg.task:
            raise ValueError(f"data is for task {data.task!r} but the GAN config is for {cfg.task!r}")
        self.data = data.resized(cfg.height, cfg.width)
        self.rows = self.data.indices(list(train_ids))
        self.n_classes = task_spec(cfg.task).n_classes
        if not len(self.rows):
            raise ValueError("no training cases for the GAN")
        if len(self.rows) < cfg.batch_size:  # the low-data ladder: epochs are shorter than a minibatch
            log.info(f"[gan] {len(self.rows)} training cases, fewer than one minibatch of {cfg.batch_size}: each "
                     f"minibatch spans several shuffled epochs, so it repeats cases")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx) -> np.ndarray:
        rows = self.rows[idx]
        mask = encode_mask(self.data.labels[rows], self.n_classes)[..., None]
        return np.concatenate([self.data.images[rows].astype(np.float32), mask], axis=-1)

    def digest(self) -> str:
        h = hashlib.sha256()
        for r in self.rows:
            h.update(np.ascontiguousarray(self.data.images[r], np.float32).tobytes())
            h.update(np.ascontiguousarray(self.data.labels[r], np.uint8).tobytes())
        return h.hexdigest()[:16]


def build_networks(cfg: GANConfig):
    from gan_seg_aug.nets.networks import build_critic, build_generator
    from gan_seg_aug.training.precision import set_precision

    with set_precision(cfg.precision):  # layers keep the policy they were built with
        g = build_generator(cfg.task, height=cfg.height, width=cfg.width, width_div=cfg.gan_width_div,
                            latent_dim=cfg.latent_dim)
        d = build_critic(cfg.task, height=cfg.height, width=cfg.width, width_div=cfg.gan_width_div,
                         norm=cfg.critic_norm)
    return g, d


def _fmt_eta(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 86400}d {s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 86400 else \
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def train_gan(cfg: GANConfig, data, train_ids, out_dir, *, resume: bool = True, strategy=None, reporter=None,
              context: dict | None = None) -> Path:
    """Train (or reuse, or resume) the WGAN-GP of one training set; returns the run directory.

    ``strategy``: a ``tf.distribute`` strategy from ``distribute.make_strategy`` (default: one device).
    ``reporter``: a :class:`gan_report.Reporter`-like object whose ``during_training(generator, it)``
    runs the cheap quality checks at every sample grid.  ``context``: where the data came from
    (``data_dir``, ``fold``), recorded in ``config.json`` for the quality command."""
    import cv2
    import keras
    import tensorflow as tf
    from tensorflow.core.framework.summary_pb2 import SummaryMetadata

    from gan_seg_aug.training import distribute
    from gan_seg_aug.training.wgan_gp import WGANGP, make_optimizer

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ValueError(f"the GAN minibatch of {cfg.batch_size} pairs cannot be split over the {replicas} replicas "
                         f"of --strategy {distribute.describe(strategy)['strategy']}: use a divisor of it")
    tb_scalar = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    out_dir = Path(out_dir)
    chief = distribute.is_chief(strategy)
    # Non-chief workers read the chief's directory and write to a scratch one (deleted at the end).
    write_dir = writer_dir(out_dir, chief)
    ckpt_dir, sample_dir, write_ckpt_dir = out_dir / "checkpoints", write_dir / "samples", write_dir / "checkpoints"

    # ---- identity of the run: refuse to mix it with a different one
    pairs = RealPairs(cfg, data, train_ids)
    ids_digest = hashlib.sha256("\n".join(sorted(train_ids)).encode()).hexdigest()[:16]
    record = {**to_dict(cfg), "dataset": data.source, "n_train_cases": len(pairs),
              "train_ids_sha256_16": ids_digest, "train_data_sha256_16": pairs.digest(), "noise": NOISE_SCHEME,
              "execution": distribute.describe(strategy), **(context or {})}
    if (out_dir / "config.json").exists():
        refuse_other_run(out_dir, read_json(out_dir / "config.json"),
                         {k: v for k, v in record.items() if k != "provenance" and k not in RESUMABLE_FIELDS},
                         what="GAN")
    done_path = out_dir / layout.GAN_DONE
    if resume and done_path.exists():
        done = read_json(done_path)
        if done.get("iterations") == cfg.iterations:
            log.info(f"[gan] reusing the finished GAN in {out_dir} ({cfg.iterations} iterations)")
            return out_dir
        if done.get("iterations", 0) > cfg.iterations:
            raise ValueError(f"{done_path}: this run already trained {done['iterations']} iterations, more than "
                             f"the {cfg.iterations} asked for; choose another --out")
    # Not reused: the run is unfinished from here on (an extension to more iterations included).
    if chief:
        done_path.unlink(missing_ok=True)
    if not resume and chief:  # start over: drop what a previous session of this same run left
        for p in [out_dir / "generator.weights.h5", *ckpt_dir.glob("ckpt_*.npz"),
                  *(out_dir / "tensorboard").glob("events.*")]:
            p.unlink(missing_ok=True)
    record["provenance"] = provenance(profile=cfg.profile, dataset=data.source, seed=cfg.seed,
                                      iterations=cfg.iterations)
    atomic_write_json(write_dir / "config.json", record)

    # ---- networks, optimisers (Tables 4.1 / 4.3)
    with strategy.scope():
        keras.utils.set_random_seed(cfg.seed)
        generator, critic = build_networks(cfg)
        if replicas > 1:
            distribute.synchronize_batch_norm(generator, critic)
        model = WGANGP(generator, critic, latent_dim=cfg.latent_dim, gp_lambda=cfg.gp_lambda,
                       n_critic=cfg.n_critic, seed=cfg.seed, strategy=strategy, jit_compile=cfg.jit_compile,
                       critic_norm=cfg.critic_norm)
        model.compile(g_optimizer=make_optimizer(cfg.learning_rate, cfg.beta_1, cfg.beta_2),
                      d_optimizer=make_optimizer(cfg.learning_rate, cfg.beta_1, cfg.beta_2))
    start = restore_gan(model, ckpt_dir) if resume else 0
    if start > cfg.iterations:
        raise ValueError(f"{ckpt_dir}: the newest checkpoint is at iteration {start}, past the "
                         f"{cfg.iterations} asked for; choose another --out")

    gpu = bool(tf.config.list_physical_devices("GPU"))
    log.info(f"[gan] {cfg.task}, profile {cfg.profile}: {cfg.height}x{cfg.width} pairs, width_div "
             f"{cfg.gan_width_div}, {cfg.iterations} iterations of {cfg.n_critic} critic steps + 1 generator step, "
             f"batch {cfg.batch_size}, lambda {cfg.gp_lambda}, Adam({cfg.learning_rate}, {cfg.beta_1}, {cfg.beta_2}), "
             f"critic norm {cfg.critic_norm}, {cfg.precision}; {len(pairs)} training cases ({data.source}); "
             f"G {generator.count_params():,} / D {critic.count_params():,} parameters; device "
             f"{'GPU' if gpu else 'CPU'}, {_fmt_execution(distribute.describe(strategy), cfg.jit_compile)}")
    if cfg.profile == "paper" and not gpu:
        days = cfg.iterations * PAPER_CPU_SECONDS_PER_ITER / 86400
        log.info(f"[gan] note: no GPU: a full-size SCR iteration measured ~{PAPER_CPU_SECONDS_PER_ITER:.0f} s or "
                 f"more on a 2-core CPU, so {cfg.iterations:,} iterations take {days:.1f} days or more")
    log.info(f"[gan] {'resuming at iteration ' + str(start) if start else 'starting'}; writing to {out_dir}")

    # ---- the loop
    fixed_z = np.random.default_rng([cfg.seed, 0]).standard_normal((N_FIXED_SAMPLES, cfg.latent_dim)).astype(np.float32)
    writer = tf.summary.create_file_writer(str(write_dir / "tensorboard"))
    log_every = max(1, min(25, cfg.iterations // 100))
    metrics, t_window, it_window, t_session = {}, time.time(), start, time.time()
    curve = TrainingCurve(write_dir / layout.GAN_CURVE, start, cfg.iterations)
    for it in range(start + 1, cfg.iterations + 1):
        idx = real_minibatch_indices(len(pairs), it, n_critic=cfg.n_critic, batch_size=cfg.batch_size, seed=cfg.seed)
        model.train_step(tf.constant(pairs[idx]))

        if it % log_every == 0 or it == cfg.iterations:
            metrics = {m.name: float(m.result()) for m in model.metrics}
            if not all(np.isfinite(v) for v in metrics.values()):
                raise FloatingPointError(f"[gan] non-finite losses at iteration {it}: {metrics}")
            its = (it - it_window) / max(time.time() - t_window, 1e-9)
            t_window, it_window = time.time(), it
            for m in model.metrics:
                m.reset_state()
            with writer.as_default(step=it):
                for name, value in {**metrics, "iterations_per_second": its}.items():
                    # tf.summary.scalar needs the tensorboard package; this is the same record without it
                    tf.summary.write(name, tf.constant(value, tf.float32), metadata=tb_scalar)
            writer.flush()
            health, changed = curve.add(it, metrics)
            log.info(f"[gan] iter {it}/{cfg.iterations} | critic {metrics['critic_loss']:.4f}"
                     f" | W {metrics['wasserstein']:.4f} | gp {metrics['gp']:.4f} | gen {metrics['gen_loss']:.4f}"
                     f" | {its:.3g} it/s | ETA {_fmt_eta((cfg.iterations - it) / its)} | health {health['status']}")
            if changed and health["status"] not in ("ok", "too_early"):
                log.warning(f"[gan] training looks unhealthy ({health['status']}): {health['rule']}; the sample grids "
                            f"in {sample_dir} show what it generates (docs/decisions.md §3)")
        if it % cfg.sample_every == 0 or it == cfg.iterations:
            ok, png = cv2.imencode(".png", sample_grid(generator, fixed_z))
            if not ok:
                raise RuntimeError(f"could not encode the sample grid of iteration {it} as PNG")
            atomic_write_bytes(sample_dir / f"iter_{it:06d}.png", png.tobytes())
            if reporter is not None and chief:
                q = reporter.during_training(generator, it)
                log.info(f"[gan] quality at {it}: "
                         + ", ".join(f"{k} {v:.3g}" for k, v in q.items() if k != "iteration"))
        if it % cfg.checkpoint_every == 0 or it == cfg.iterations:
            save_gan_checkpoint(model, write_ckpt_dir, it)
    writer.close()
    if not chief:
        release(write_dir, out_dir)
        log.info(f"[gan] worker done; waiting for the chief to write {out_dir}")
        distribute.barrier(strategy)  # the U-Net stage that follows loads the chief's generator
        return out_dir

    # ---- the product: the generator's weights and its portable copy, then done.json (its presence = finished)
    from gan_seg_aug.export.portable import save_portable

    tmp = out_dir / ".generator.tmp.weights.h5"  # Keras insists on the .weights.h5 suffix
    generator.save_weights(tmp)
    tmp.replace(out_dir / "generator.weights.h5")
    save_portable(generator, out_dir)
    atomic_write_json(done_path, {
        "iterations": cfg.iterations, "final_metrics": metrics, "generator": "generator.weights.h5",
        "health": curve.health(),
        "resumed_from": start, "session_seconds": round(time.time() - t_session, 1),
        "provenance": provenance(profile=cfg.profile, dataset=data.source, seed=cfg.seed, iterations=cfg.iterations)})
    distribute.barrier(strategy)
    log.info(f"[gan] done: {out_dir / 'generator.weights.h5'}")
    return out_dir


def _fmt_execution(execution: dict, jit_compile: bool) -> str:
    text = f"--strategy {execution['strategy']} ({execution['replicas']} replica{'s' if execution['replicas'] > 1 else ''}"
    text += f", {execution['workers']} workers)" if "workers" in execution else ")"
    return text + (", XLA" if jit_compile else "")


def read_gan_config(gan_dir) -> GANConfig:
    """The :class:`GANConfig` a run directory was trained with (from its ``config.json``)."""
    rec = read_json(Path(gan_dir) / "config.json")
    names = {f.name for f in dataclasses.fields(GANConfig)}
    missing = names - rec.keys()
    if missing:
        raise ValueError(f"{Path(gan_dir) / 'config.json'}: not a GAN run config (missing {sorted(missing)})")
    return GANConfig(**{k: rec[k] for k in names})


def load_generator(gan_dir):
    """Rebuild a finished run's generator from ``config.json`` and load ``generator.weights.h5``."""
    from gan_seg_aug.nets.networks import build_generator
    from gan_seg_aug.training.precision import set_precision

    gan_dir = Path(gan_dir)
    if not layout.is_finished_gan(gan_dir):
        raise FileNotFoundError(f"{gan_dir}: not a finished GAN run (no done.json); train it with "
                                f"experiments/train_gan.py first")
    cfg = read_gan_config(gan_dir)
    with set_precision(cfg.precision):  # layers keep the policy they were built with
        g = build_generator(cfg.task, height=cfg.height, width=cfg.width, width_div=cfg.gan_width_div,
                            latent_dim=cfg.latent_dim)
    g.load_weights(gan_dir / "generator.weights.h5")
    return g
