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

    from gan_seg_aug import distribute
    from gan_seg_aug.models import build_unet

    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_unet("scr_lung", height=32, width=32, width_div=8)
        opt = keras.optimizers.SGD(0.1)
        opt.build(model.trainable_variables)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (B, 32, 32, 1)).astype(np.float32)
    y = (x[..., 0] > 0.2).astype(np.int32)
    w0 = _flat([model])
    loss = float(distribute.distributed_unet_step(strategy, model, opt, global_batch_size=B)(x, y)["loss"])
    return {"loss": loss}, w0, _flat([model]), _flat([model], trainable=False)


def _gan_run(strategy, sync: bool):
    import keras
    import tensorflow as tf

    from gan_seg_aug import distribute
    from gan_seg_aug.models import build_critic, build_generator

    with strategy.scope():
        keras.utils.set_random_seed(0)
        g = build_generator("scr_lung", height=SIDE, width=SIDE, width_div=64, latent_dim=LATENT)
        d = build_critic("scr_lung", height=SIDE, width=SIDE, width_div=16, norm="batch")
        if sync:
            distribute.synchronize_batch_norm(g, d)
        g_opt, d_opt = keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)
        g_opt.build(g.trainable_variables)
        d_opt.build(d.trainable_variables)
    real = np.random.default_rng(2).uniform(-1, 1, (N_CRITIC, B, SIDE, SIDE, 2)).astype(np.float32)
    noise = distribute.draw_gan_noise(7, 3, n_critic=N_CRITIC, batch_size=B, latent_dim=LATENT)
    w0 = _flat([g, d])
    step = distribute.distributed_gan_iteration(strategy, g, d, g_opt, d_opt, global_batch_size=B, n_critic=N_CRITIC)
    metrics = step(tf.constant(real), *noise)
    return {k: float(v) for k, v in metrics.items()}, w0, _flat([g, d]), _flat([g, d], trainable=False)


def _compare(single, multi) -> dict:
    (m1, w0, w1, all1), (m2, _, w2, all2) = single, multi
    out = {"update_rel_diff": float(np.linalg.norm((w2 - w0) - (w1 - w0)) / np.linalg.norm(w1 - w0)),
           "update_norm": float(np.linalg.norm(w1 - w0)),
           "all_variables_max_abs_diff": float(np.max(np.abs(all2 - all1)))}
    out.update({f"{k}_rel_diff": abs(m2[k] - m1[k]) / max(abs(m1[k]), 1e-6) for k in m1})
    return out


def worker(mode: str) -> dict:
    """Runs in a fresh process.  The strategy comes first: logical devices and
    MultiWorkerMirroredStrategy must be set up before any other TensorFlow operation."""
    from gan_seg_aug import distribute

    strategy = distribute.make_strategy(mode, logical_cpus=2 if mode == "mirrored" else 0)
    import tensorflow as tf

    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    result = {"replicas": strategy.num_replicas_in_sync,
              "unet": _compare(_unet_run(one), _unet_run(strategy)),
              "gan_sync_bn": _compare(_gan_run(one, True), _gan_run(strategy, True))}
    if mode == "mirrored":
        result["gan_unsynced_bn"] = _compare(_gan_run(one, False), _gan_run(strategy, False))
        errors = []
        for bad in (lambda: distribute.distributed_unet_step(strategy, None, None, global_batch_size=3),
                    lambda: distribute.distributed_unet_step(strategy, None, None, global_batch_size=4,
                                                             jit_compile=True)):
            try:
                bad()
            except ValueError as e:
                errors.append(str(e))
        result["errors"] = errors
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
    assert any("multiple of the 2 replicas" in e for e in res["errors"])
    assert any("jit_compile" in e for e in res["errors"])


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


def test_one_replica_steps_match_the_training_code():
    """With the default strategy the wrappers compute what gan.WGANGP.train_step and
    train.make_train_step compute (same noise drawn from the same generator state)."""
    import keras
    import tensorflow as tf

    from gan_seg_aug import distribute
    from gan_seg_aug.gan import WGANGP
    from gan_seg_aug.models import build_critic, build_generator, build_unet
    from gan_seg_aug.train import make_train_step

    one = distribute.make_strategy("default")

    def nets():
        keras.utils.set_random_seed(0)
        return (build_generator("scr_lung", height=SIDE, width=SIDE, width_div=64, latent_dim=LATENT),
                build_critic("scr_lung", height=SIDE, width=SIDE, width_div=16, norm="batch"))

    real = np.random.default_rng(2).uniform(-1, 1, (N_CRITIC, B, SIDE, SIDE, 2)).astype(np.float32)
    g1, d1 = nets()
    ref = WGANGP(g1, d1, latent_dim=LATENT, n_critic=N_CRITIC, seed=5)
    ref.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
    twin = tf.random.Generator.from_seed(5)  # WGANGP draws z then alpha per critic step, then z
    z_c, alpha = [], []
    for _ in range(N_CRITIC):
        z_c.append(twin.normal([B, LATENT]))
        alpha.append(twin.uniform([B, 1, 1, 1]))
    z_g = twin.normal([B, LATENT])
    m_ref = {k: float(v) for k, v in ref.train_step(tf.constant(real)).items()}

    g2, d2 = nets()
    step = distribute.distributed_gan_iteration(one, g2, d2, keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01),
                                                global_batch_size=B, n_critic=N_CRITIC)
    m = {k: float(v) for k, v in step(tf.constant(real), tf.stack(z_c), tf.stack(alpha), z_g).items()}
    for key in ("critic_loss", "gp", "gen_loss", "wasserstein"):
        assert m[key] == pytest.approx(m_ref[key], rel=1e-4, abs=1e-5), key
    np.testing.assert_allclose(_flat([g2, d2], trainable=False), _flat([g1, d1], trainable=False),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="real_batches must be"):
        step(tf.constant(real[0]), tf.stack(z_c), tf.stack(alpha), z_g)  # one minibatch, not n_critic of them

    x = np.random.default_rng(1).uniform(-1, 1, (B, 32, 32, 1)).astype(np.float32)
    y = (x[..., 0] > 0.2).astype(np.int32)
    losses, weights = [], []
    for make in (lambda m, o: make_train_step(m, o),
                 lambda m, o: distribute.distributed_unet_step(one, m, o, global_batch_size=B)):
        keras.utils.set_random_seed(0)
        model = build_unet("scr_lung", height=32, width=32, width_div=8)
        losses.append(float(make(model, keras.optimizers.SGD(0.1))(x, y)["loss"]))
        weights.append(_flat([model]))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-4, atol=1e-6)


def test_noise_is_a_function_of_seed_and_iteration():
    from gan_seg_aug import distribute

    a = distribute.draw_gan_noise(3, 10, n_critic=5, batch_size=4, latent_dim=8)
    b = distribute.draw_gan_noise(3, 10, n_critic=5, batch_size=4, latent_dim=8)
    c = distribute.draw_gan_noise(3, 11, n_critic=5, batch_size=4, latent_dim=8)
    assert [tuple(t.shape) for t in a] == [(5, 4, 8), (5, 4, 1, 1, 1), (4, 8)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert float(np.min(a[1])) >= 0.0 and float(np.max(a[1])) <= 1.0


def test_bad_arguments_are_refused_with_the_flag_named(monkeypatch):
    import tensorflow as tf

    from gan_seg_aug import distribute

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
