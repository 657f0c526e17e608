"""tf.distribute: the WGAN-GP iteration and the U-Net step give the single-device result.

Multi-replica runs need logical CPU devices configured before TensorFlow initialises, which the
pytest process has long done, so they run in fresh subprocesses: this file is also the worker
script (``python tests/test_distribute.py mirrored|multiworker``), printing one ``RESULT {json}``
line.  Every comparison is: same initial weights, same GLOBAL batch, same z / alpha passed in
explicitly, one update with plain SGD (Adam's first steps are scale-invariant and would hide a
wrongly scaled gradient), then ||dw_replicas - dw_single|| / ||dw_single|| <= DIST_RTOL.
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
DIST_RTOL = 1e-4  # float summation order only
MUST_DIFFER = 1e-3  # un-synchronised batch norm really does change the result: the check can fail
B, N_CRITIC, SIDE, LATENT = 4, 2, 16, 8


# ----------------------------------------------------------------------------- the worker
def _flat(models, trainable=True):
    """Trainable variables (what the gradient updates) or all of them (BN moving statistics too)."""
    vs = [v for m in models for v in (m.trainable_variables if trainable else m.variables)]
    return np.concatenate([np.ravel(v.numpy()).astype(np.float64) for v in vs])


def _unet_run(strategy):
    import keras

    from gan_seg_aug.nets.networks import build_unet
    from gan_seg_aug.training.unet_trainer import make_train_step

    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_unet("scr_lung", height=32, width=32, width_div=8)
        opt = keras.optimizers.SGD(0.1)
        opt.build(model.trainable_variables)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (B, 32, 32, 1)).astype(np.float32)
    y = (x[..., 0] > 0.2).astype(np.int32)
    w0 = _flat([model])
    loss = float(make_train_step(model, opt, strategy=strategy)(x, y)["loss"])
    return {"loss": loss}, w0, _flat([model]), _flat([model], trainable=False)


def _gan_run(strategy, sync: bool):
    """One WGAN-GP iteration (2 critic steps + 1 generator step) exactly as train_gan runs it."""
    import keras
    import tensorflow as tf

    from gan_seg_aug.training import distribute
    from gan_seg_aug.training.wgan_gp import WGANGP
    from gan_seg_aug.nets.networks import build_critic, build_generator

    with strategy.scope():
        keras.utils.set_random_seed(0)
        g = build_generator("scr_lung", height=SIDE, width=SIDE, width_div=64, latent_dim=LATENT)
        d = build_critic("scr_lung", height=SIDE, width=SIDE, width_div=16, norm="batch")
        if sync:
            distribute.synchronize_batch_norm(g, d)
        gan = WGANGP(g, d, latent_dim=LATENT, n_critic=N_CRITIC, seed=7, strategy=strategy)
        gan.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
    gan.iteration.assign(2)  # noise of iteration 3, as after a resume
    real = np.random.default_rng(2).uniform(-1, 1, (N_CRITIC, B, SIDE, SIDE, 2)).astype(np.float32)
    w0 = _flat([g, d])
    metrics = gan.train_step(tf.constant(real))
    return {k: float(v) for k, v in metrics.items()}, w0, _flat([g, d]), _flat([g, d], trainable=False)


def _compare(single, multi) -> dict:
    (m1, w0, w1, all1), (m2, _, w2, all2) = single, multi
    out = {"update_rel_diff": float(np.linalg.norm((w2 - w0) - (w1 - w0)) / np.linalg.norm(w1 - w0)),
           "update_norm": float(np.linalg.norm(w1 - w0)),
           "all_variables_max_abs_diff": float(np.max(np.abs(all2 - all1)))}
    out.update({f"{k}_rel_diff": abs(m2[k] - m1[k]) / max(abs(m1[k]), 1e-6) for k in m1})
    return out


def _refusals(strategy) -> list:
    """What a 2-replica strategy must refuse: an odd minibatch, and XLA (it cannot hold the all-reduce)."""
    import keras
    import tensorflow as tf

    from gan_seg_aug.training.wgan_gp import WGANGP
    from gan_seg_aug.training.unet_trainer import make_train_step

    with strategy.scope():
        model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1)])
        opt = keras.optimizers.SGD(0.1)
        opt.build(model.trainable_variables)
    errors = []
    for bad in (lambda: make_train_step(model, opt, strategy=strategy)(tf.zeros((3, 4, 4, 1)), tf.zeros((3, 4, 4))),
                lambda: make_train_step(model, opt, strategy=strategy, jit_compile=True),
                lambda: WGANGP(model, model, strategy=strategy, jit_compile=True)):
        try:
            bad()
        except ValueError as e:
            errors.append(str(e))
    return errors


def worker(mode: str) -> dict:
    """Runs in a fresh process.  The strategy comes first: logical devices and
    MultiWorkerMirroredStrategy must be set up before any other TensorFlow operation."""
    from gan_seg_aug.training import distribute

    strategy = distribute.make_strategy(mode, logical_cpus=2 if mode == "mirrored" else 0)
    import tensorflow as tf

    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    result = {"replicas": strategy.num_replicas_in_sync,
              "unet": _compare(_unet_run(one), _unet_run(strategy)),
              "gan_sync_bn": _compare(_gan_run(one, True), _gan_run(strategy, True))}
    if mode == "mirrored":
        result["gan_unsynced_bn"] = _compare(_gan_run(one, False), _gan_run(strategy, False))
        result["errors"] = _refusals(strategy)
    return result


# ----------------------------------------------------------------------------- the tests
def _run_worker(mode: str, env_extra=None, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.Popen([sys.executable, __file__, mode], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc, timeout=600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}"
    lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
    assert lines, f"worker printed no RESULT line:\n{out[-2000:]}\n{err[-2000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _assert_matches_single_device(res: dict):
    for case in ("unet", "gan_sync_bn"):
        r = res[case]
        assert r["update_norm"] > 0
        assert r["update_rel_diff"] <= DIST_RTOL, (case, r)
        assert r["all_variables_max_abs_diff"] <= 1e-4, (case, r)  # BN moving statistics included
        for key, value in r.items():
            if key.endswith("_rel_diff") and not key.startswith("wasserstein"):
                assert value <= DIST_RTOL, (case, key, r)


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_one_device():
    res = _result(_run_worker("mirrored"))
    assert res["replicas"] == 2
    _assert_matches_single_device(res)
    # Without synchronised BN the replicas normalise with their own half-batch statistics.
    assert res["gan_unsynced_bn"]["update_rel_diff"] > MUST_DIFFER
    assert len(res["errors"]) == 3
    assert "multiple of the 2" in res["errors"][0]
    assert all("jit_compile" in e for e in res["errors"][1:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multiworker_two_processes_match_one_device():
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    procs = [_run_worker("multiworker", {"TF_CONFIG": json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    try:
        results = [_result(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for res in results:
        assert res["replicas"] == 2
        _assert_matches_single_device(res)


def test_bad_arguments_are_refused_with_the_flag_named(monkeypatch):
    import tensorflow as tf

    from gan_seg_aug.training import distribute

    with pytest.raises(ValueError, match="--strategy"):
        distribute.make_strategy("horovod")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multiworker")
    with pytest.raises(ValueError, match="logical_cpus"):
        distribute.configure_logical_cpus(0)
    tf.config.list_logical_devices()  # devices initialised: too late to split the CPU
    if len(tf.config.list_logical_devices("CPU")) != 3:
        with pytest.raises(RuntimeError, match="fresh process"):
            distribute.configure_logical_cpus(3)


if __name__ == "__main__":
    print("RESULT " + json.dumps(worker(sys.argv[1])), flush=True)
