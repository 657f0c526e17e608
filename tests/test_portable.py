"""generator.keras loads without this package; sample_pairs.py writes deterministic pair sets."""
import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_seg_aug.artifacts import atomic_write_json
from gan_seg_aug.config import GANConfig, gan_config
from gan_seg_aug.layout import quality_dir

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "sample_pairs.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A tiny 'finished' GAN run directory, no training: random weights with moved BN averages."""
    from gan_seg_aug.nets.networks import build_generator

    d = tmp_path_factory.mktemp("gan_run")
    cfg = gan_config("scr_lung", "smoke", latent_dim=8, height=32, width=32, gan_width_div=32)
    g = build_generator("scr_lung", height=32, width=32, width_div=32, latent_dim=8)
    g(np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32) * 3, training=True)  # moving stats != init
    g.save_weights(d / "generator.weights.h5")
    atomic_write_json(d / "config.json", {**dataclasses.asdict(cfg), "dataset": "synthetic"})
    atomic_write_json(d / "done.json", {"iterations": cfg.iterations})
    return d


def test_export_loads_without_package(gan_run, tmp_path):
    from gan_seg_aug.training.gan_trainer import load_generator
    from gan_seg_aug.export.portable import export_generator

    path = export_generator(gan_run)
    assert path == gan_run / "generator.keras" and path.exists()
    assert not list(gan_run.glob(".*tmp*"))
    info = json.loads((gan_run / "generator.json").read_text())
    assert info["input"]["shape"] == ["n", 8] and info["output"]["shape"] == ["n", 32, 32, 2]
    assert info["output"]["channels"] == ["image_0", "mask"] and info["n_classes"] == 2
    assert info["class_names"] == ["background", "left_lung"] and "m > 0" in info["mask_to_labels"]
    assert "training=False" in info["batch_norm"] and "training=True" in info["batch_norm"]

    z = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    g = load_generator(gan_run)
    expected = {m: np.asarray(g(z, training=m == "batch")) for m in ("moving", "batch")}
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'gan_seg_aug':
            raise ImportError('gan_seg_aug is blocked in this test')
sys.meta_path.insert(0, Block())
import numpy as np, keras
m = keras.models.load_model({str(path)!r})
z = np.load('z.npy')
np.save('moving.npy', np.asarray(m(z, training=False)))
np.save('batch.npy', np.asarray(m(z, training=True)))
assert not any(k.startswith('gan_seg_aug') for k in sys.modules)
"""
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for mode, want in expected.items():
        got = np.load(tmp_path / f"{mode}.npy")
        assert got.shape == (4, 32, 32, 2)
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(expected["moving"], expected["batch"], atol=1e-3)  # the two BN modes differ


def _files(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def test_sample_to_disk_png_deterministic(gan_run, tmp_path, caplog):
    import cv2

    from gan_seg_aug.export.sample_disk import sample_to_disk

    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    m = sample_to_disk(gan_run, 5, tmp_path / "a", seed=3, fmt="png", batch=2)
    lines = list(caplog.messages)
    sample_to_disk(gan_run, 5, tmp_path / "b", seed=3, fmt="png", batch=2)
    sample_to_disk(gan_run, 5, tmp_path / "c", seed=3, fmt="png", batch=4)
    sample_to_disk(gan_run, 5, tmp_path / "d", seed=4, fmt="png", batch=2)
    a = _files(tmp_path / "a")
    assert sorted(a) == [f"{k}/{i:06d}.png" for k in ("images", "masks") for i in range(5)]
    assert a == _files(tmp_path / "b") == _files(tmp_path / "c")
    assert a != _files(tmp_path / "d")
    assert lines == ["sampled 2/5", "sampled 4/5", "sampled 5/5"]
    img = cv2.imread(str(tmp_path / "a/images/000000.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(tmp_path / "a/masks/000000.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == mask.shape == (32, 32) and img.dtype == mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    man = json.loads(m.read_text())
    assert (man["seed"], man["n"], man["format"], man["sampling_bn"]) == (3, 5, "png", "moving")
    assert man["gan_config"]["critic_norm"] == GANConfig.critic_norm and man["gan_config"]["dataset"] == "synthetic"
    assert man["gan_config"]["profile"] == "smoke" and man["quality"] is None
    assert [s["index"] for s in man["samples"]] == list(range(5)) and man["samples"][1]["mask"] == "masks/000001.png"


def test_sample_to_disk_npz_matches_png_and_quality(gan_run, tmp_path):
    from gan_seg_aug.export.sample_disk import noise, sample_to_disk

    qdir = quality_dir(gan_run)
    report = qdir / "gan_quality_bn-moving.json"  # gan_quality.report_name("moving")
    try:
        atomic_write_json(report, {"summary": {"pair_consistency": 0.9}})
        sample_to_disk(gan_run, 5, tmp_path / "n1", seed=3, fmt="npz", batch=2)
        sample_to_disk(gan_run, 5, tmp_path / "n2", seed=3, fmt="npz", batch=5)
    finally:
        report.unlink()
        qdir.rmdir()
    p1, p2 = np.load(tmp_path / "n1/pairs.npz"), np.load(tmp_path / "n2/pairs.npz")
    assert p1["images"].shape == (5, 32, 32, 1) and p1["images"].dtype == np.float32
    assert p1["labels"].shape == (5, 32, 32) and p1["labels"].dtype == np.uint8
    assert p1["images"].min() >= -1 and p1["images"].max() <= 1
    np.testing.assert_array_equal(p1["z"], noise(3, 0, 5, 8))
    np.testing.assert_allclose(p1["images"], p2["images"], atol=1e-6)
    np.testing.assert_array_equal(p1["labels"], p2["labels"])
    man = json.loads((tmp_path / "n1/manifest.json").read_text())
    assert man["quality"] == {"pair_consistency": 0.9} and man["format"] == "npz"


def test_sampling_bn_batch(gan_run, tmp_path):
    from gan_seg_aug.export.sample_disk import sample_to_disk

    sample_to_disk(gan_run, 3, tmp_path / "m", seed=0, fmt="npz", batch=4, sampling_bn="moving")
    sample_to_disk(gan_run, 3, tmp_path / "b", seed=0, fmt="npz", batch=4, sampling_bn="batch")
    sample_to_disk(gan_run, 3, tmp_path / "b2", seed=0, fmt="npz", batch=4, sampling_bn="batch")
    m, b, b2 = (np.load(tmp_path / f"{k}/pairs.npz")["images"] for k in ("m", "b", "b2"))
    assert not np.allclose(m, b, atol=1e-3)
    np.testing.assert_array_equal(b, b2)
    assert json.loads((tmp_path / "b/manifest.json").read_text())["sampling_bn"] == "batch"


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_writes_pairs_and_overwrite(gan_run, tmp_path):
    out = tmp_path / "cli"
    r = _cli("--gan-dir", gan_run, "--n", 3, "--out", out, "--batch", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "sampled 2/3" in r.stderr and "sampled 3/3" in r.stderr
    assert len(list((out / "images").glob("*.png"))) == 3 and (out / "manifest.json").exists()
    r = _cli("--gan-dir", gan_run, "--n", 2, "--out", out, "--overwrite", "--format", "npz")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "pairs.npz"]


def test_cli_errors(gan_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (tmp_path / "file").write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    cases = [
        (["--gan-dir", tmp_path / "missing", "--n", 2, "--out", tmp_path / "o"], "--gan-dir"),
        (["--gan-dir", unfinished, "--n", 2, "--out", tmp_path / "o"], "done.json"),
        (["--gan-dir", gan_run, "--n", 0, "--out", tmp_path / "o"], "--n"),
        (["--gan-dir", gan_run, "--n", "two", "--out", tmp_path / "o"], "--n"),
        (["--gan-dir", gan_run, "--n", 2, "--out", tmp_path / "file"], "is a file"),
        (["--gan-dir", gan_run, "--n", 2, "--out", full], "--overwrite"),
        (["--gan-dir", gan_run, "--n", 2, "--out", tmp_path / "o", "--format", "jpg"], "--format"),
    ]
    for args, needle in cases:
        r = _cli(*args, timeout=60)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "error" in lines[0], (args, r.stderr)
    assert not (tmp_path / "o").exists() and (full / "keep.txt").exists()
