"""Publishing runs into results/: light files only, finished runs only, same layout, idempotent."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from gan_seg_aug.export.publish import MAX_FIGURE_WIDTH, publish_runs, restore_runs

REPO = Path(__file__).resolve().parents[1]


def _fake_runs(root: Path) -> Path:
    fold = root / "scr_lung" / "cpu" / "real" / "fold1"
    unet = fold / "16-0-NoAug"
    (unet / "checkpoints").mkdir(parents=True)
    (unet / "summary.json").write_text(json.dumps({"test": {"dice_mean": 0.97}}))
    (unet / "config.json").write_text("{}")
    (unet / "metrics_per_image.csv").write_text("case_id,dice\nc0,0.97\n")
    (unet / "checkpoints" / "ckpt_100.npz").write_bytes(b"x" * 1000)
    (unet / "best.weights.h5").write_bytes(b"w")
    gan = fold / "gan_critic-layer"
    (gan / "samples").mkdir(parents=True)
    (gan / "quality").mkdir()
    (gan / "done.json").write_text("{}")
    (gan / "generator.weights.h5").write_bytes(b"w")
    (gan / "quality" / "gan_quality_bn-moving.json").write_text("{}")
    for it in (250, 500):  # the last grid is the one published
        grid = np.full((1500, 1500, 3), it // 250, np.uint8)
        cv2.imwrite(str(gan / "samples" / f"iter_{it:06d}.png"), grid)
    unfinished = fold / "8-8-NoAug_critic-layer_bn-moving"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    (root / "splits").mkdir()
    (root / "splits" / "scr_lung.json").write_text("{}")
    return fold


def test_publish_copies_light_files_of_finished_runs_in_the_layout(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results" / "runs"
    _fake_runs(runs)
    written = publish_runs(runs, out)
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    fold = "scr_lung/cpu/real/fold1"
    assert got == sorted([f"{fold}/16-0-NoAug/summary.json", f"{fold}/16-0-NoAug/config.json",
                          f"{fold}/16-0-NoAug/metrics_per_image.csv", f"{fold}/gan_critic-layer/done.json",
                          f"{fold}/gan_critic-layer/quality/gan_quality_bn-moving.json",
                          f"{fold}/gan_critic-layer/final_samples.png", "splits/scr_lung.json"])
    assert len(written) == len(got)
    grid = cv2.imread(str(out / fold / "gan_critic-layer" / "final_samples.png"))
    assert grid.shape[1] == MAX_FIGURE_WIDTH and int(grid[0, 0, 0]) == 2  # shrunk, and the newest grid
    assert publish_runs(runs, out) == []  # idempotent: nothing rewritten


def test_publish_command_refuses_a_missing_runs_dir(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "experiments" / "publish_runs.py"), str(tmp_path / "nope"),
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode != 0 and "nope" in r.stderr and "not a directory" in r.stderr


def test_restore_brings_back_finished_unet_runs_but_never_a_gan_without_its_generator(tmp_path):
    runs, out, fresh = tmp_path / "runs", tmp_path / "results" / "runs", tmp_path / "fresh"
    _fake_runs(runs)
    publish_runs(runs, out)
    # a fresh machine: one run of the fold already exists there (an interrupted 16-0-Aug), and is kept as it is
    kept = fresh / "scr_lung" / "cpu" / "real" / "fold1" / "16-0-Aug"
    kept.mkdir(parents=True)
    (kept / "config.json").write_text('{"mine": 1}')
    (out / "scr_lung" / "cpu" / "real" / "fold1" / "16-0-Aug").mkdir()
    (out / "scr_lung" / "cpu" / "real" / "fold1" / "16-0-Aug" / "summary.json").write_text('{"theirs": 1}')
    restored = restore_runs(out, fresh)
    fold = fresh / "scr_lung" / "cpu" / "real" / "fold1"
    assert restored == [fold / "16-0-NoAug"]
    assert json.loads((fold / "16-0-NoAug" / "summary.json").read_text()) == {"test": {"dice_mean": 0.97}}
    assert (fold / "16-0-NoAug" / "metrics_per_image.csv").read_text() == "case_id,dice\nc0,0.97\n"
    assert not (fold / "gan_critic-layer").exists()  # done.json without a generator would fool the sweep
    assert (kept / "config.json").read_text() == '{"mine": 1}' and not (kept / "summary.json").exists()
    assert (fresh / "splits" / "scr_lung.json").is_file()
    assert restore_runs(out, fresh) == []  # idempotent
    assert restore_runs(out, out) == [] and restore_runs(tmp_path / "nothing", fresh) == []


def test_a_restored_reference_unet_is_retrained_for_the_gan_quality_report(tmp_path, monkeypatch):
    from gan_seg_aug import experiment, layout

    fold = tmp_path / "scr_lung" / "cpu" / "real" / "fold1"
    ref = fold / "16-0-NoAug"
    ref.mkdir(parents=True)
    (ref / "summary.json").write_text(json.dumps({"test": {"dice_mean": 0.97}}))  # published: no weights
    trained = []

    def fake_run(settings):
        trained.append(settings)
        Path(settings.out).mkdir(parents=True)
        (Path(settings.out) / layout.UNET_WEIGHTS).write_bytes(b"w")
        (Path(settings.out) / "summary.json").write_text("{}")

    monkeypatch.setattr(experiment, "run", fake_run)
    s = experiment.RunSettings("scr_lung", fold=1, mix="8-8", seed=1, runs_dir=str(tmp_path))
    assert experiment.ensure_reference_unet(s, "cpu", fold) == ref
    assert len(trained) == 1 and trained[0].seed == 0 and trained[0].mix == "16-0" and trained[0].aug is None
    assert json.loads((ref / "summary.json").read_text()) == {}  # the row is the new run
    assert experiment.ensure_reference_unet(s, "cpu", fold) == ref and len(trained) == 1  # usable: kept
    (ref / layout.UNET_WEIGHTS).unlink()
    (ref / "checkpoints").mkdir()
    (ref / "checkpoints" / "ckpt_100.npz").write_bytes(b"x")  # not a published copy: never deleted
    with pytest.raises(ValueError, match="move the directory away"):
        experiment.ensure_reference_unet(s, "cpu", fold)
    assert (ref / "checkpoints" / "ckpt_100.npz").exists()


def test_a_finished_gan_with_its_report_needs_no_reference_unet(tmp_path, monkeypatch):
    """A U-Net row sampling a GAN whose report was adopted must not retrain the restored reference (76 min
    for Cityscapes 8-0-NoAug); a GAN still without a report must."""
    from gan_seg_aug import experiment, layout
    from gan_seg_aug.reporting import gan_report
    from gan_seg_aug.training import gan_trainer

    fold_dir = _fake_runs(tmp_path)
    (fold_dir / "16-0-NoAug" / "best.weights.h5").unlink()  # restored from a published copy
    (fold_dir / "16-0-NoAug" / "checkpoints" / "ckpt_100.npz").unlink()
    gan = fold_dir / "gan_critic-layer"
    (gan / "quality" / "gan_quality_bn-moving.json").write_text(json.dumps({"summary": {"kid": 0.01}}))
    retrained, reported = [], []
    monkeypatch.setattr(experiment, "ensure_reference_unet", lambda *a: retrained.append(a) or fold_dir)
    monkeypatch.setattr(gan_trainer, "train_gan", lambda *a, **k: None)
    monkeypatch.setattr(experiment, "final_quality_report", lambda rep, *a: reported.append(rep))
    s = experiment.RunSettings("scr_lung", fold=1, mix="8-8", runs_dir=str(tmp_path), precision="float32")
    fold = {"train": [], "val": [f"c{i}" for i in range(40)]}
    assert experiment.train_fold_gan(s, "cpu", SimpleNamespace(source="real"), fold, out=gan) == gan
    assert retrained == [] and reported == [None]  # the written report is read, not recomputed
    (gan / layout.GAN_DONE).unlink()  # unfinished: the report is still to be written
    monkeypatch.setattr(gan_report, "Reporter", lambda *a, **k: "reporter")
    experiment.train_fold_gan(s, "cpu", SimpleNamespace(source="real"), fold, out=gan)
    assert len(retrained) == 1 and reported == [None, "reporter"]


def _retrained_gan(runs: Path, curve: str) -> Path:
    """A GAN trained again on a fresh machine with --no-quality: curve and done.json, no report."""
    gan = runs / "scr_lung" / "cpu" / "real" / "fold1" / "gan_critic-layer"
    gan.mkdir(parents=True)
    (gan / "done.json").write_text("{}")
    (gan / "metrics.csv").write_text(curve)
    return gan


def test_a_retrained_gan_adopts_the_published_report_only_when_its_curve_is_byte_identical(tmp_path):
    from gan_seg_aug.export.publish import adopt_quality_report, published_quality_report

    runs, out = tmp_path / "runs", tmp_path / "results" / "runs"
    gan = _fake_runs(runs) / "gan_critic-layer"
    (gan / "metrics.csv").write_text("iteration,wasserstein\n20,31.85665512084961\n")
    (gan / "quality" / "during_training.csv").write_text("iteration,kid\n20,0.3\n")
    publish_runs(runs, out)
    published = out / "scr_lung" / "cpu" / "real" / "fold1" / "gan_critic-layer"
    assert published_quality_report(published, "moving") and not published_quality_report(published, "batch")

    same = _retrained_gan(tmp_path / "same", "iteration,wasserstein\n20,31.85665512084961\n")
    assert adopt_quality_report(published, same, "moving")
    assert sorted(p.name for p in (same / "quality").iterdir()) == ["during_training.csv", "gan_quality_bn-moving.json"]

    other = _retrained_gan(tmp_path / "other", "iteration,wasserstein\n20,31.85665512084962\n")  # last digit
    assert not adopt_quality_report(published, other, "moving") and not (other / "quality").exists()
    assert not adopt_quality_report(published, same, "batch")  # no report of that sampling mode to adopt
    # the sweep may republish the new curve before the GAN's job checks it: compare with the curve read before
    before = (published / "metrics.csv").read_bytes()
    (published / "metrics.csv").write_bytes((other / "metrics.csv").read_bytes())
    assert not adopt_quality_report(published, other, "moving", published_curve=before)


def test_publishing_a_recomputed_report_drops_the_stale_files_of_the_old_one(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results" / "runs"
    gan = _fake_runs(runs) / "gan_critic-layer"
    (gan / "quality" / "during_training.csv").write_text("iteration,kid\n20,0.3\n")
    publish_runs(runs, out)
    published = out / "scr_lung" / "cpu" / "real" / "fold1" / "gan_critic-layer" / "quality"
    assert (published / "during_training.csv").is_file()
    (gan / "quality" / "during_training.csv").unlink()  # the new report (gan_quality.py) has no training part
    (gan / "quality" / "gan_quality_bn-moving.json").write_text('{"new": 1}')
    publish_runs(runs, out)
    assert sorted(p.name for p in published.iterdir()) == ["gan_quality_bn-moving.json"]
    assert (published / "gan_quality_bn-moving.json").read_text() == '{"new": 1}'
