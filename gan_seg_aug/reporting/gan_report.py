"""Run the GAN quality report (:mod:`gan_seg_aug.evaluation.gan_quality`) on a GAN run directory and keep it there.

``<gan_dir>/quality/gan_quality_bn-<mode>.json`` (the report; last in, so its presence = written) and
``.png`` (the figure), and the headline numbers as TensorBoard scalars ``quality/<name>`` in the run's
``tensorboard/``.  During training a cheap subset is appended to ``quality/during_training.csv``.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_write_bytes, atomic_write_csv, atomic_write_json, provenance, read_json
from gan_seg_aug.evaluation.gan_quality import (QualitySettings, find_reference_unet, headline, quality_report,
                          report_name, settings_dict)
from gan_seg_aug.layout import quality_dir

log = logging.getLogger(__name__)


def real_pairs(gan_cfg: dict, data, fold: dict):
    """The fold's real ``(images, labels)`` for train and val at the GAN's resolution, after checking
    that ``fold['train']`` is the set this GAN was trained on (its recorded digest)."""
    digest = hashlib.sha256("\n".join(sorted(fold["train"])).encode()).hexdigest()[:16]
    if gan_cfg.get("train_ids_sha256_16") not in (None, digest):
        raise ValueError("the given --data-dir / --fold do not hold the training cases this GAN was trained on "
                         f"(digest {digest}, the run recorded {gan_cfg['train_ids_sha256_16']})")
    small = data.resized(gan_cfg["height"], gan_cfg["width"])
    out = []
    for subset in ("train", "val"):
        idx = small.indices(fold[subset])
        out.append((small.images[idx], small.labels[idx]))
    return out


class Reporter:
    """Reports on one GAN run: holds the real pairs and the reference U-Net, so the during-training
    checks and the final report share them."""

    def __init__(self, gan_dir, gan_cfg: dict, data, fold: dict, *, reference_dir=None):
        self.gan_dir, self.cfg = Path(gan_dir), gan_cfg
        self.train, self.val = real_pairs(gan_cfg, data, fold)
        self.reference_dir = Path(reference_dir) if reference_dir else find_reference_unet(gan_dir, gan_cfg["task"])
        from gan_seg_aug.training.unet_trainer import load_unet

        self.unet = load_unet(self.reference_dir) if self.reference_dir else None
        self._cache = {}  # the reference U-Net's outputs on the real pairs, computed once per run
        if self.unet is not None and tuple(self.unet.input.shape[1:3]) != self.train[0].shape[1:3]:
            raise ValueError(f"the reference U-Net {self.reference_dir} works at {tuple(self.unet.input.shape[1:3])}, "
                             f"the GAN at {self.train[0].shape[1:3]}: use a reference of the same profile")
        if self.unet is None:
            log.warning("no reference U-Net in %s: the report has no pair consistency or feature metrics",
                        self.gan_dir.parent)

    def report(self, generator, settings: QualitySettings, iteration: int):
        rep, arrays = quality_report(generator, self.cfg["latent_dim"], self.cfg["task"], self.train, self.val,
                                     self.unet, settings, cache=self._cache)
        rep.update(iteration=int(iteration), reference_unet=str(self.reference_dir) if self.reference_dir else None,
                   critic_norm=self.cfg.get("critic_norm"), settings=settings_dict(settings))
        return rep, arrays

    def final(self, generator, settings: QualitySettings, iteration: int) -> dict:
        """The full report, written as JSON + figure, and its headline in TensorBoard."""
        import cv2

        from gan_seg_aug.config import task_spec
        from gan_seg_aug.reporting.quality_figure import report_figure

        rep, arrays = self.report(generator, settings, iteration)
        rep["provenance"] = provenance(profile=self.cfg.get("profile"), dataset=self.cfg.get("dataset"),
                                       seed=self.cfg.get("seed"))
        qdir, stem = quality_dir(self.gan_dir), report_name(settings.sampling_bn)
        title = (f"{self.gan_dir.name}: {self.cfg['task']} {self.cfg.get('profile')} {self.cfg.get('dataset')}, "
                 f"iteration {iteration}, sampling BN {settings.sampling_bn}, n={settings.n}")
        fig = report_figure(rep, arrays, *self.train, task_spec(self.cfg["task"]).n_classes, title)
        ok, png = cv2.imencode(".png", fig)
        if not ok:
            raise RuntimeError(f"could not encode the quality figure of {self.gan_dir}")
        atomic_write_bytes(qdir / f"{stem}.png", png.tobytes())
        atomic_write_json(qdir / f"{stem}.json", rep)
        write_scalars(self.gan_dir, rep["summary"], iteration, prefix=f"quality_bn-{settings.sampling_bn}")
        return rep

    def during_training(self, generator, iteration: int, n: int = 64) -> dict:
        """The cheap subset (no FD, precision/recall, memorisation or figure), appended to a CSV."""
        settings = QualitySettings(n=n, cheap=True, seed=iteration)
        rep, _ = self.report(generator, settings, iteration)
        row = {"iteration": int(iteration), **rep["summary"]}
        path = quality_dir(self.gan_dir) / "during_training.csv"
        rows = _read_rows(path)
        rows = [r for r in rows if int(r["iteration"]) < iteration] + [row]  # a resumed run rewrites its future
        import pandas as pd

        atomic_write_csv(path, pd.DataFrame(rows))
        write_scalars(self.gan_dir, rep["summary"], iteration, prefix="quality_during_training")
        return row


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    import pandas as pd

    return pd.read_csv(path).to_dict("records")


def write_scalars(gan_dir, values: dict, step: int, prefix: str) -> None:
    """``values`` as TensorBoard scalars ``<prefix>/<name>`` in the run's ``tensorboard/``."""
    import tensorflow as tf
    from tensorflow.core.framework.summary_pb2 import SummaryMetadata

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    writer = tf.summary.create_file_writer(str(Path(gan_dir) / "tensorboard"))
    with writer.as_default(step=int(step)):
        for name, value in values.items():
            if value is not None and np.isfinite(value):
                tf.summary.write(f"{prefix}/{name}", tf.constant(float(value), tf.float32), metadata=meta)
    writer.close()


def read_report(gan_dir, sampling_bn: str = "moving") -> dict | None:
    """A written report of ``gan_dir``, or None."""
    path = quality_dir(gan_dir) / f"{report_name(sampling_bn)}.json"
    return read_json(path) if path.exists() else None


def report_columns(gan_dir, sampling_bn: str = "moving") -> dict:
    """``gan_<name>`` columns for a table row sampled from ``gan_dir`` (empty when there is no report)."""
    rep = read_report(gan_dir, sampling_bn) if gan_dir else None
    return {f"gan_{k}": v for k, v in headline(rep).items()} if rep else {}
