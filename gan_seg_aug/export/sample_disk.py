"""Write a finished pair GAN's samples to disk as ordinary files.

``sample_to_disk`` draws ``n`` pairs from a run's generator (thesis Table 4.1: ``z ~ N(0, 1)``;
§4.1: image channels, then the mask channel) and writes either

* ``png``: ``images/000000.png`` (uint8 grey or RGB) and ``masks/000000.png`` (uint8 labels = class ids), or
* ``npz``: one ``pairs.npz`` with ``images`` float32 [n, H, W, C] in [-1, 1], ``labels`` uint8 [n, H, W]
  and the noise ``z`` float32 [n, latent_dim] (held in memory: use png for very many pairs),

then ``manifest.json`` (atomically, last: its presence means the set is complete).  The noise of pair
``j`` depends only on ``(seed, j)`` (:func:`noise`), so a seed gives the same pairs whatever ``batch``
and a smaller ``n`` gives a prefix.  ``sampling_bn="batch"`` normalises each generator call by its own
statistics: pair ``j`` is then normalised together with the pairs of its ``batch``-sized group
(``j // batch``; the last group is filled up with the noise of the following indices), so there the
result does depend on ``batch``.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_save_npz, atomic_write_bytes, atomic_write_json, provenance, read_json
from gan_seg_aug.config import SAMPLING_BN, task_fields, task_spec
from gan_seg_aug.data.mask_encoding import decode_mask
from gan_seg_aug.layout import GAN_DONE, quality_dir

FORMATS = ("png", "npz")
NOISE_CHUNK = 1024
MANIFEST = "manifest.json"

log = logging.getLogger(__name__)


def noise(seed: int, start: int, stop: int, latent_dim: int) -> np.ndarray:
    """``z`` of pairs ``start..stop-1``: row ``j % 1024`` of ``default_rng([seed, j // 1024])``'s
    standard normal ``[1024, latent_dim]`` block.

    >>> bool((noise(3, 1020, 1030, 4) == noise(3, 0, 2048, 4)[1020:1030]).all())
    True
    """
    rows = []
    for chunk in range(start // NOISE_CHUNK, -(-stop // NOISE_CHUNK)):
        block = np.random.default_rng([seed, chunk]).standard_normal((NOISE_CHUNK, latent_dim)).astype(np.float32)
        lo, hi = max(start - chunk * NOISE_CHUNK, 0), min(stop - chunk * NOISE_CHUNK, NOISE_CHUNK)
        rows.append(block[lo:hi])
    return np.concatenate(rows) if rows else np.zeros((0, latent_dim), np.float32)


def check_request(gan_dir, n, out, fmt="png", batch=32, sampling_bn="moving", overwrite=False):
    """Validate a request without TensorFlow; raises ``ValueError`` naming the flag.  Returns ``(gan_dir, out)``."""
    from gan_seg_aug.training.gan_trainer import read_gan_config

    gan_dir, out = Path(gan_dir), Path(out)
    if not gan_dir.is_dir():
        raise ValueError(f"--gan-dir {gan_dir}: no such directory; expected a finished GAN run directory")
    if not (gan_dir / GAN_DONE).exists():
        raise ValueError(f"--gan-dir {gan_dir}: not a finished GAN run (no {GAN_DONE}); "
                         f"finish it with experiments/train_gan.py first")
    try:
        read_gan_config(gan_dir)
    except (FileNotFoundError, ValueError, TypeError) as e:
        raise ValueError(f"--gan-dir {gan_dir}: unreadable run config ({e})") from None
    if not (gan_dir / "generator.weights.h5").exists():
        raise ValueError(f"--gan-dir {gan_dir}: no generator.weights.h5 beside {GAN_DONE}")
    for flag, value in (("--n", n), ("--batch", batch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{flag} {value!r}: expected a whole number >= 1")
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if sampling_bn not in SAMPLING_BN:
        raise ValueError(f"--sampling-bn {sampling_bn!r}: expected one of {', '.join(SAMPLING_BN)}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; expected a new or empty directory")
    if out.exists() and out.resolve() == gan_dir.resolve():
        raise ValueError(f"--out {out}: is the GAN run directory; expected a directory of its own")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out}: exists and is not empty; expected a new or empty directory "
                         f"(or pass --overwrite)")
    return gan_dir, out


def _clear_previous(out: Path) -> None:
    """--overwrite: remove what an earlier sample set wrote (manifest first), nothing else."""
    (out / MANIFEST).unlink(missing_ok=True)
    (out / "pairs.npz").unlink(missing_ok=True)
    for sub in ("images", "masks"):
        for p in (out / sub).glob("[0-9]*.png"):
            p.unlink()
        if (out / sub).is_dir() and not any((out / sub).iterdir()):
            shutil.rmtree(out / sub)


def _generate(generator, z: np.ndarray, batch_stats: bool) -> np.ndarray:
    # training=True also moves the BN averages of this (local, discarded) generator; they do not enter its output
    return np.asarray(generator(z, training=batch_stats), dtype=np.float32)


def _encode_png(array: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError("could not encode a PNG")
    return buf.tobytes()


def sample_to_disk(gan_dir, n: int, out, seed: int = 0, fmt: str = "png", batch: int = 32,
                   sampling_bn: str = "moving", *, overwrite: bool = False) -> Path:
    """Write ``n`` generated pairs of the finished run ``gan_dir`` to ``out``; returns the manifest path.
    Logs a progress line (INFO) after every generator call."""
    gan_dir, out = check_request(gan_dir, n, out, fmt, batch, sampling_bn, overwrite)
    from gan_seg_aug.training.gan_trainer import load_generator, read_gan_config

    cfg = read_gan_config(gan_dir)
    spec = task_spec(cfg.task)
    record, done = read_json(gan_dir / "config.json"), read_json(gan_dir / GAN_DONE)
    generator = load_generator(gan_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    width = max(6, len(str(n - 1)))
    if fmt == "npz":
        images = np.empty((n, cfg.height, cfg.width, spec.image_channels), np.float32)
        labels = np.empty((n, cfg.height, cfg.width), np.uint8)
    samples = []
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        # batch statistics: always a full group of `batch` rows (padded with the next indices' noise)
        z = noise(seed, start, start + batch if sampling_bn == "batch" else stop, cfg.latent_dim)
        x = _generate(generator, z, sampling_bn == "batch")[: stop - start]
        lab = decode_mask(x[..., -1], spec.n_classes)
        if fmt == "npz":
            images[start:stop], labels[start:stop] = x[..., :-1], lab
            samples += [{"index": j, "row": j} for j in range(start, stop)]
        else:
            u8 = np.clip((x[..., :-1] + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            u8 = u8[..., 0] if spec.image_channels == 1 else u8[..., ::-1]  # RGB -> BGR for cv2
            for k, j in enumerate(range(start, stop)):
                name = f"{j:0{width}d}.png"
                atomic_write_bytes(out / "images" / name, _encode_png(u8[k]))
                atomic_write_bytes(out / "masks" / name, _encode_png(lab[k]))
                samples.append({"index": j, "image": f"images/{name}", "mask": f"masks/{name}"})
        log.info(f"sampled {stop}/{n}")
    if fmt == "npz":
        atomic_save_npz(out / "pairs.npz", images=images, labels=labels, z=noise(seed, 0, n, cfg.latent_dim))
    from gan_seg_aug.evaluation.gan_quality import report_name

    q_path = quality_dir(gan_dir) / f"{report_name(sampling_bn)}.json"  # the report of this sampling mode
    manifest = {
        "n": n, "seed": seed, "format": fmt, "batch": batch, "sampling_bn": sampling_bn,
        "noise": f"z_j = row j % {NOISE_CHUNK} of numpy.random.default_rng([seed, j // {NOISE_CHUNK}])"
                 f".standard_normal(({NOISE_CHUNK}, {cfg.latent_dim})), float32",
        "bn_groups": f"pairs j // {batch} (the last group filled up with later indices)" if sampling_bn == "batch"
                     else None,
        **task_fields(cfg.task), "height": cfg.height, "width": cfg.width, "image_channels": spec.image_channels,
        "n_classes": spec.n_classes, "class_names": list(spec.class_names),
        "images": "uint8 = round((x + 1) * 127.5), " + ("grey" if spec.image_channels == 1 else "RGB")
                  if fmt == "png" else "float32 in [-1, 1], [n, H, W, C]",
        "labels": "uint8 class ids: " + ("x > 0 on the mask channel" if spec.n_classes == 2
                                         else "nearest of the evenly spaced mask levels") + " (encoding.decode_mask)",
        "gan_dir": str(gan_dir.resolve()),
        "gan_config": {"dataset": record.get("dataset"), "profile": cfg.profile, "critic_norm": cfg.critic_norm,
                       "iterations": cfg.iterations, "seed": cfg.seed, "latent_dim": cfg.latent_dim,
                       "precision": cfg.precision, "finished_iterations": done.get("iterations")},
        "quality": read_json(q_path).get("summary") if q_path.exists() else None,
        "quality_path": str(q_path.resolve()) if q_path.exists() else None,
        "samples": samples,
        "provenance": provenance(profile=cfg.profile, dataset=record.get("dataset"), seed=seed),
    }
    return atomic_write_json(out / MANIFEST, manifest)

