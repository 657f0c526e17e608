"""Finished runs as committable results: the light files of a runs directory, in the same layout.

A runs directory holds checkpoints and weights (tens of MB per run) beside the records a result rests
on (configs, summaries, per-image metrics, training curves, GAN quality reports).  ``results/`` must
hold only the second kind (the brief: "never checkpoints or data"), in the layout that
``experiments/tables.py --collect-only --runs-dir`` and ``experiments/compare.py --runs-dir`` read,
so a committed result can be re-tabled and re-tested by anyone without the runs.

What is copied: every file named in :data:`LIGHT_FILES` and everything under a GAN's ``quality/``
directory, for finished runs only (a marker of :mod:`gan_seg_aug.layout` exists), a GAN's last sample
grid as ``final_samples.png``, and the saved splits.  Figures wider than :data:`MAX_FIGURE_WIDTH` pixels
are shrunk (:func:`small_png`).  Copies are atomic
and a file already identical at the destination is left alone, so publishing is idempotent and can
run after every finished row of a long sweep.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gan_seg_aug import layout
from gan_seg_aug.artifacts import atomic_write_bytes

log = logging.getLogger(__name__)

# per U-Net run: the summary (finished marker), its config, the training record and the per-image metrics;
# per GAN run: done.json, config, the logged curve and the final sample grid.  Never *.npz / *.h5 / tensorboard.
LIGHT_FILES = ("summary.json", "config.json", "train_done.json", "history.csv", "metrics_per_image.csv",
               "metrics_val_per_image.csv", layout.GAN_DONE, layout.GAN_CURVE)
FINAL_SAMPLES = "final_samples.png"  # a GAN's last sample grid (samples/iter_*.png), under this name
MAX_FIGURE_WIDTH = 720  # px: a committed figure stays a few hundred kB


def finished_run_dirs(runs_dir) -> list[Path]:
    """Every finished U-Net and GAN run under ``runs_dir`` (``<task>/<profile>/<dataset>/fold*/<run>``)."""
    return sorted(set(_runs_marked(runs_dir, layout.UNET_DONE)) | set(_runs_marked(runs_dir, layout.GAN_DONE)))


def _runs_marked(root, marker: str) -> list[Path]:
    """Run directories of ``<task>/<profile>/<dataset>/fold*/<run>`` under ``root`` holding ``marker``."""
    return sorted(m.parent for m in Path(root).glob(f"*/*/*/fold*/*/{marker}"))


def publish_runs(runs_dir, out_dir) -> list[Path]:
    """Copy the light files of every finished run (and the saved splits) from ``runs_dir`` to ``out_dir``,
    keeping the layout; returns the files written (unchanged files are not rewritten)."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs directory {runs_dir}: not a directory")
    if out_dir.resolve() == runs_dir.resolve():
        raise ValueError(f"--out {out_dir}: must differ from the runs directory")
    written, runs = [], finished_run_dirs(runs_dir)
    for run in runs:
        pairs = [(run / name, run / name) for name in LIGHT_FILES if (run / name).is_file()]
        if layout.quality_dir(run).is_dir():
            pairs += [(p, p) for p in sorted(layout.quality_dir(run).rglob("*")) if p.is_file()]
        grids = sorted((run / "samples").glob("iter_*.png"))
        if grids:
            pairs.append((grids[-1], run / FINAL_SAMPLES))
        for src, name in pairs:
            dst = out_dir / name.relative_to(runs_dir)
            if src.suffix not in layout.WEIGHT_SUFFIXES and _copy(src, dst):
                written.append(dst)
        if layout.quality_dir(run).is_dir():
            _drop_stale(layout.quality_dir(run), layout.quality_dir(out_dir / run.relative_to(runs_dir)))
    splits = runs_dir / "splits"
    for src in sorted(splits.glob("*.json")) if splits.is_dir() else []:
        if _copy(src, out_dir / src.relative_to(runs_dir)):
            written.append(out_dir / src.relative_to(runs_dir))
    log.info(f"published {len(runs)} finished runs of {runs_dir} to {out_dir} "
             f"({len(written)} files written, the rest unchanged)")
    return written


def restore_runs(published_dir, runs_dir) -> list[Path]:
    """The way back: every finished U-Net run of ``published_dir`` that ``runs_dir`` lacks, and the saved
    splits, copied into ``runs_dir``; returns the run directories restored.

    A sweep continued on a fresh machine starts from its published copy, so it neither reruns the rows
    that landed nor recomputes the tables without them.  GANs are left out on purpose: their published
    copy has ``done.json`` but no generator, and restoring it would make the sweep take a GAN as finished
    that a later row cannot sample from; a fold's GAN is retrained (same seed and config) when a row still
    needs it; the fold's reference U-Net it judges pairs with, restored without weights, is trained again
    only if that GAN's quality report must be recomputed (``experiment.train_fold_gan``).  A run directory
    that exists in ``runs_dir`` is never touched, finished or not."""
    published_dir, runs_dir = Path(published_dir), Path(runs_dir)
    if not published_dir.is_dir() or published_dir.resolve() == runs_dir.resolve():
        return []
    restored = []
    for run in _runs_marked(published_dir, layout.UNET_DONE):
        dst = runs_dir / run.relative_to(published_dir)
        if dst.exists():
            continue
        for src in sorted(f for f in run.rglob("*") if f.is_file()):
            _copy(src, dst / src.relative_to(run))
        restored.append(dst)
    splits = published_dir / "splits"
    for src in sorted(splits.glob("*.json")) if splits.is_dir() else []:
        dst = runs_dir / src.relative_to(published_dir)
        if not dst.exists():
            _copy(src, dst)
    if restored:
        log.info(f"restored {len(restored)} finished U-Net run(s) from {published_dir} into {runs_dir} "
                 "(GANs are not restored: their checkpoints are never published)")
    return restored


def published_precisions(published_dir, profile: str) -> set[str]:
    """The precisions (``config.precision``) of the finished U-Net runs of ``profile`` in ``published_dir``, any
    task; empty when there are none.  A published directory is one body of evidence, so a sweep extending it
    runs at the precision already there: the tables take rows of one precision only, and a row of another
    would leave the published ones out of the rewritten CSVs."""
    root = Path(published_dir)
    return {layout.recorded_precision(run) for run in _runs_marked(root, layout.UNET_DONE)
            if run.relative_to(root).parts[1] == profile}  # <task>/<profile>/<dataset>/fold*/<run>


def published_quality_report(published_gan, sampling_bn: str) -> bool:
    """Whether ``published_gan`` (a GAN's light copy) holds its training curve and a finished quality report
    for this sampling mode (the report's JSON is written last, so it marks the report as complete)."""
    from gan_seg_aug.evaluation.gan_quality import report_name

    report = layout.quality_dir(published_gan) / f"{report_name(sampling_bn)}.json"
    return (Path(published_gan) / layout.GAN_CURVE).is_file() and report.is_file()


def adopt_quality_report(published_gan, gan_dir, sampling_bn: str, published_curve: bytes | None = None) -> bool:
    """Copy the published quality report into ``gan_dir`` if ``gan_dir`` retrained the same GAN; say whether.

    "The same GAN" is judged by its training curve: ``metrics.csv`` logs the critic loss, Wasserstein
    estimate, penalty and generator loss every few iterations at full float precision, so two trainings
    whose curves are byte-identical ran the same arithmetic on the same minibatches (a fold's GAN retrained
    from its seed on the same stack is: measured on the real JSRT, fold 1).  The report then describes this
    generator too, and retraining its reference U-Net (~20 min on 2 cores) to recompute it is skipped.
    Any difference, or a missing curve, adopts nothing: the caller must compute the report anew.

    ``published_curve``: the published curve as read *before* the retraining started.  A sweep republishes
    after every finished run, so by the time the GAN is done its own curve may have replaced the published one."""
    published_gan, gan_dir = Path(published_gan), Path(gan_dir)
    mine, theirs = gan_dir / layout.GAN_CURVE, published_gan / layout.GAN_CURVE
    if not (published_quality_report(published_gan, sampling_bn) and layout.is_finished_gan(gan_dir)
            and mine.is_file()):
        return False
    if mine.read_bytes() != (theirs.read_bytes() if published_curve is None else published_curve):
        log.warning(f"{gan_dir}: its training curve differs from the published run's ({theirs}); the published "
                    "quality report does not describe it")
        return False
    src = layout.quality_dir(published_gan)
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        _copy(f, layout.quality_dir(gan_dir) / f.relative_to(src))
    log.info(f"{gan_dir}: training curve byte-identical to the published run's; adopted its quality report")
    return True


def _drop_stale(src_dir: Path, dst_dir: Path) -> None:
    """Remove files of ``dst_dir`` that ``src_dir`` lacks: a published GAN's report is the run's, whole (a GAN
    retrained with another curve gets a new report without the old run's ``during_training.csv``)."""
    for f in sorted(p for p in dst_dir.rglob("*") if p.is_file()):
        if not (src_dir / f.relative_to(dst_dir)).is_file():
            log.info(f"removed {f}: the run's quality report no longer has it")
            f.unlink()


def _copy(src: Path, dst: Path) -> bool:
    data = src.read_bytes()
    if src.suffix == ".png":
        data = small_png(data)
    if dst.is_file() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, data)
    return True


def small_png(data: bytes, max_width: int = MAX_FIGURE_WIDTH) -> bytes:
    """The PNG shrunk (area interpolation) to at most ``max_width`` pixels wide; unchanged if narrower."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.shape[1] <= max_width:
        return data
    scale = max_width / img.shape[1]
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return png.tobytes() if ok else data
