"""``--strategy`` reaches the commands: smoke-size runs on 2 logical CPUs and 2 local workers.

The step-level equivalence (one update, plain SGD, 1e-4) is tests/test_distribute.py; here the
whole command runs, and the check is that the trained generator is the single-device one up to
Adam's amplification of float summation order: Adam's first steps are ~lr x sign(gradient), so a
near-zero gradient element whose sign flips moves by a full step (measured: 0.06 % of the
elements, ||w_2 - w_1|| / ||w_1 - w_0|| = 1.3 % after 4 iterations).  A run with different noise
or minibatches, or unsynchronised batch norm, lands far outside WEIGHTS_RTOL.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_RTOL = 0.05
pytestmark = pytest.mark.slow


def _env(extra=None):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra or {})}


def _gan_cmd(out: Path, *flags):
    return [sys.executable, str(REPO / "experiments" / "train_gan.py"), "--task", "scr_lung", "--profile", "smoke",
            "--out", str(out), *flags]


def _run(cmd, extra_env=None, timeout=600):
    proc = subprocess.run(cmd, env=_env(extra_env), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _update_rel_diff(run_a: Path, run_b: Path) -> float:
    """||w_b - w_a|| / ||w_a - w_0|| over the generators' trainable variables (w_0: the seeded initialisation)."""
    import keras

    from gan_seg_aug.training.gan_trainer import build_networks, load_generator, read_gan_config

    cfg = read_gan_config(run_a)
    keras.utils.set_random_seed(cfg.seed)
    g0, _ = build_networks(cfg)
    flat = lambda m: np.concatenate([np.ravel(v.numpy()) for v in m.trainable_variables])  # noqa: E731
    w0, wa, wb = flat(g0), flat(load_generator(run_a)), flat(load_generator(run_b))
    assert np.linalg.norm(wa - w0) > 0
    return float(np.linalg.norm(wb - wa) / np.linalg.norm(wa - w0))


@pytest.fixture(scope="module")
def single_device_gan(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan_default") / "gan"
    _run(_gan_cmd(out))
    return out


def test_mirrored_gan_and_unet_commands_on_two_logical_cpus(single_device_gan, tmp_path):
    gan = tmp_path / "gan"
    log = _run(_gan_cmd(gan, "--strategy", "mirrored", "--logical-cpus", "2"))
    assert "--strategy mirrored (2 replicas)" in log
    config = json.loads((gan / "config.json").read_text())
    assert config["execution"] == {"strategy": "mirrored", "replicas": 2}
    assert _update_rel_diff(single_device_gan, gan) <= WEIGHTS_RTOL

    # The U-Net command under the same strategy, sampling that generator.
    runs = tmp_path / "runs"
    _run([sys.executable, str(REPO / "experiments" / "scr_lung.py"), "--profile", "smoke", "--mix", "8-8",
          "--runs-dir", str(runs), "--gan-checkpoint", str(gan), "--strategy", "mirrored", "--logical-cpus", "2"])
    summary = json.loads(next(runs.rglob("summary.json")).read_text())
    assert summary["execution"] == {"strategy": "mirrored", "replicas": 2, "jit_compile_unet": False}
    assert 0.0 <= summary["test"]["dice_mean"] <= 1.0


def test_a_minibatch_that_does_not_split_over_the_replicas_is_refused(tmp_path):
    proc = subprocess.run(_gan_cmd(tmp_path / "gan", "--strategy", "mirrored", "--logical-cpus", "3"), env=_env(),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "16 pairs cannot be split over the 3 replicas" in proc.stderr
    assert not (tmp_path / "gan" / "config.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_multiworker_experiment_two_local_workers_share_one_run_directory(single_device_gan, tmp_path):
    """GAN, U-Net and evaluation of one fold by 2 worker processes: the chief writes, the other waits
    for the chief's generator before sampling from it."""
    runs, scratch = tmp_path / "runs", tmp_path / "tmp"
    scratch.mkdir()
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    cmd = [sys.executable, str(REPO / "experiments" / "scr_lung.py"), "--profile", "smoke", "--mix", "8-8",
           "--runs-dir", str(runs), "--strategy", "multiworker"]
    procs = [subprocess.Popen(cmd, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env({"TMPDIR": str(scratch),
                                        "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                                 "task": {"type": "worker", "index": i}})}))
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"worker failed:\n{out[-2000:]}\n{err[-3000:]}"
    assert "worker done; waiting for the chief" in outs[1][0] and "[gan] done:" in outs[0][0]
    assert "the chief evaluates" in outs[1][0]
    gan = next(p for p in runs.rglob("gan_critic-*") if p.is_dir())
    config = json.loads((gan / "config.json").read_text())
    assert config["execution"] == {"strategy": "multiworker", "replicas": 2, "workers": 2}
    assert _update_rel_diff(single_device_gan, gan) <= WEIGHTS_RTOL
    # the chief's 8-8 run, beside the real-pairs-only reference U-Net the chief trained for the quality report
    summaries = [p for p in runs.rglob("summary.json") if "16-0-NoAug" not in str(p)]
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["execution"]["strategy"] == "multiworker" and summary["execution"]["replicas"] == 2
    assert not list(scratch.glob("gan_seg_aug_worker_*"))  # the non-chief's scratch output is gone
