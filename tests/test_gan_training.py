"""train_gan end to end on tiny data (16x16 pairs, narrow networks): outputs, reuse, refusal, exact resume."""
import contextlib
import dataclasses
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
cv2 = pytest.importorskip("cv2")

from gan_seg_aug.config import gan_config  # noqa: E402
from gan_seg_aug.data.base import TaskData  # noqa: E402
from gan_seg_aug.training.gan_trainer import (  # noqa: E402
    build_networks, load_generator, read_gan_config, real_minibatch_indices, train_gan)

REPO = Path(__file__).resolve().parents[1]
N_CASES, SIDE = 12, 16


def tiny_data(n=N_CASES, side=SIDE, seed=0) -> TaskData:
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, side, side), np.uint8)
    labels[:, side // 4: 3 * side // 4, side // 2:] = 1  # a "left lung" block
    images = np.clip(rng.normal(0, 0.3, (n, side, side, 1)) + 0.5 * labels[..., None], -1, 1).astype(np.float32)
    return TaskData(task="scr_lung", source="synthetic", case_ids=[f"C{i:02d}" for i in range(n)], images=images,
                    labels=labels, spacing_mm=np.ones((n, 2)), native_label_fn=lambda i: labels[i])


def tiny_cfg(**kw):
    base = dict(height=SIDE, width=SIDE, gan_width_div=16, iterations=4, batch_size=4, sample_every=2,
                checkpoint_every=2)
    base.update(kw)
    return gan_config("scr_lung", "smoke", **base)


TRAIN_IDS = [f"C{i:02d}" for i in range(10)]


class _Handler(logging.Handler):
    def __init__(self, on_message):
        super().__init__(logging.INFO)
        self.on_message = on_message

    def emit(self, record):
        self.on_message(record.getMessage())


@contextlib.contextmanager
def on_log(on_message):
    """``on_message(text)`` for every gan_seg_aug INFO line of the block: caplog is per test, and a
    handler can also raise (a simulated interruption at a given line)."""
    logger, handler = logging.getLogger("gan_seg_aug"), _Handler(on_message)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    lines = []
    cfg = tiny_cfg()
    with on_log(lines.append):
        assert train_gan(cfg, tiny_data(), TRAIN_IDS, out) == out
    return cfg, out, lines


def test_run_writes_all_outputs(finished_run):
    cfg, out, lines = finished_run
    rec = json.loads((out / "config.json").read_text())
    assert rec["gp_lambda"] == 10.0 and rec["n_critic"] == 5 and rec["n_train_cases"] == 10
    assert rec["dataset"] == "synthetic" and rec["provenance"]["profile"] == "smoke"
    done = json.loads((out / "done.json").read_text())
    assert done["iterations"] == 4 and set(done["final_metrics"]) == {"critic_loss", "wasserstein", "gp", "gen_loss"}
    assert all(np.isfinite(v) for v in done["final_metrics"].values())
    for it in (2, 4):
        grid = cv2.imread(str(out / "samples" / f"iter_{it:06d}.png"))
        assert grid is not None and grid.shape[2] == 3 and grid.shape[1] > 4 * 2 * SIDE  # 4 pairs per row
    assert sorted(p.name for p in (out / "checkpoints").glob("*.npz")) == ["ckpt_000002.npz", "ckpt_000004.npz"]
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    tags = {(v.tag, e.step) for f in events for e in tf.compat.v1.train.summary_iterator(str(f))
            for v in e.summary.value}
    for tag in ("critic_loss", "wasserstein", "gp", "gen_loss", "iterations_per_second"):
        assert {(tag, 1), (tag, 4)} <= tags, tag
    assert any("iter 4/4" in line and "it/s" in line and "ETA" in line for line in lines)
    assert any("profile smoke" in line for line in lines)


def test_both_networks_moved_and_generator_reloads(finished_run):
    cfg, out, _ = finished_run
    keras.utils.set_random_seed(cfg.seed)
    g0, d0 = build_networks(cfg)  # the same initial weights train_gan started from
    g = load_generator(out)
    assert read_gan_config(out) == cfg
    z = np.random.default_rng(0).standard_normal((3, cfg.latent_dim)).astype(np.float32)
    x = g(z, training=False).numpy()
    assert x.shape == (3, SIDE, SIDE, 2) and np.all(np.abs(x) <= 1)
    assert any(not np.allclose(a, b) for a, b in zip(g0.get_weights(), g.get_weights()))
    with np.load(out / "checkpoints" / "ckpt_000004.npz") as ck:
        d_final = [ck[f"critic/{i:04d}"] for i in range(len(d0.variables))]
    assert any(not np.allclose(a.numpy(), b) for a, b in zip(d0.variables, d_final))


def test_finished_run_is_reused(finished_run, caplog):
    cfg, out, _ = finished_run
    before = (out / "done.json").read_text()
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    train_gan(cfg, tiny_data(), TRAIN_IDS, out)
    lines = caplog.messages
    assert any("reusing" in line for line in lines) and not any("iter " in line for line in lines)
    assert (out / "done.json").read_text() == before


def test_finished_run_extends_to_more_iterations_and_no_resume_starts_over(finished_run, tmp_path, caplog):
    import shutil

    cfg, out, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    train_gan(dataclasses.replace(cfg, iterations=6), tiny_data(), TRAIN_IDS, run)
    assert any("resuming at iteration 4" in line for line in caplog.messages)
    assert json.loads((run / "done.json").read_text())["iterations"] == 6
    with pytest.raises(ValueError, match="already trained 6 iterations"):
        train_gan(cfg, tiny_data(), TRAIN_IDS, run)
    caplog.clear()
    train_gan(dataclasses.replace(cfg, iterations=2), tiny_data(), TRAIN_IDS, run, resume=False)
    assert any("starting" in line for line in caplog.messages)
    assert sorted(p.name for p in (run / "checkpoints").glob("*.npz")) == ["ckpt_000002.npz"]
    assert json.loads((run / "done.json").read_text())["iterations"] == 2


@pytest.mark.parametrize("change", [dict(cfg=dict(gp_lambda=1.0)), dict(cfg=dict(critic_norm="batch-realfake")),
                                    dict(ids=TRAIN_IDS[1:]), dict(seed=1)])
def test_mismatched_run_is_refused(finished_run, change):
    cfg, out, _ = finished_run
    cfg2 = dataclasses.replace(cfg, **change.get("cfg", {}))
    data = tiny_data(seed=change.get("seed", 0))
    with pytest.raises(ValueError, match="holds a GAN run with other settings"):
        train_gan(cfg2, data, change.get("ids", TRAIN_IDS), out)


@pytest.fixture
def op_determinism():
    """Deterministic kernels for this test only (other tests may use ops without a deterministic kernel)."""
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    yield
    if not was:
        tf_config.disable_op_determinism()


def test_resumed_run_ends_with_the_same_weights(tmp_path, op_determinism, caplog):
    cfg = tiny_cfg(iterations=6)
    straight = train_gan(cfg, tiny_data(), TRAIN_IDS, tmp_path / "straight")

    def crash_at_5(line):
        if "iter 5/6" in line:
            raise KeyboardInterrupt("simulated interruption")

    with pytest.raises(KeyboardInterrupt), on_log(crash_at_5):
        train_gan(cfg, tiny_data(), TRAIN_IDS, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "done.json").exists()
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    train_gan(cfg, tiny_data(), TRAIN_IDS, tmp_path / "resumed")
    assert any("resuming at iteration 4" in line for line in caplog.messages)
    with np.load(straight / "checkpoints" / "ckpt_000006.npz") as a, \
            np.load(tmp_path / "resumed" / "checkpoints" / "ckpt_000006.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:  # generator, critic, both optimisers, noise-generator state
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_minibatches_are_a_function_of_seed_and_iteration():
    a = real_minibatch_indices(10, 7, n_critic=5, batch_size=4, seed=3)
    np.testing.assert_array_equal(a, real_minibatch_indices(10, 7, n_critic=5, batch_size=4, seed=3))
    assert not np.array_equal(a, real_minibatch_indices(10, 7, n_critic=5, batch_size=4, seed=4))
    # over whole epochs every case is used equally often
    all_idx = np.concatenate([real_minibatch_indices(10, i, n_critic=5, batch_size=4, seed=3).ravel()
                              for i in range(1, 6)])  # 100 draws = 10 epochs
    assert np.bincount(all_idx, minlength=10).tolist() == [10] * 10


def test_fewer_cases_than_a_minibatch_repeat_cases_evenly():
    """The low-data ladder trains GANs on 9 cases with minibatches of 16: each minibatch spans epochs."""
    idx = np.concatenate([real_minibatch_indices(9, i, n_critic=5, batch_size=16, seed=0).ravel() for i in (1, 2, 3)])
    assert idx.shape == (240,) and set(idx.tolist()) == set(range(9))
    assert np.bincount(idx, minlength=9).max() - np.bincount(idx, minlength=9).min() <= 1


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no training cases"):
        train_gan(tiny_cfg(), tiny_data(), [], tmp_path / "x")
    with pytest.raises(KeyError, match="not in this dataset"):
        train_gan(tiny_cfg(), tiny_data(), ["nope"] * 4, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no done.json"):
        load_generator(tmp_path)


def _cli():
    spec = importlib.util.spec_from_file_location("train_gan_cli", REPO / "experiments" / "train_gan.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("argv", [["--task", "lungs"], ["--task", "scr_lung", "--fold", "0"],
                                  ["--task", "scr_lung", "--iterations", "-3"],
                                  ["--task", "scr_lung", "--critic-norm", "spectral"],
                                  ["--task", "scr_lung", "--gan-width-div", "0"]])
def test_cli_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _cli().parse_args(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_smoke_run(tmp_path, capsys):
    out = tmp_path / "gan"
    assert _cli().main(["--task", "scr_lung", "--profile", "smoke", "--iterations", "2", "--gan-width-div", "16",
                        "--out", str(out)]) == 0
    assert (out / "done.json").exists() and (out / "samples" / "iter_000002.png").exists()
    recorded = read_gan_config(out)  # the flags reach the run and its record (smoke's own divisor is 32)
    assert (recorded.iterations, recorded.gan_width_div) == (2, 16)
    assert "SYNTHETIC" in capsys.readouterr().out


def test_sample_grid_puts_image_and_mask_side_by_side():
    from gan_seg_aug.training.gan_monitor import sample_grid

    def fake_generator(z, training):  # Cityscapes-like pairs: RGB = (1, -1, -1) (red), mask = +1
        assert training is False  # the grid shows what the U-Net's sampler will draw
        x = np.full((len(z), 4, 8, 4), -1.0, np.float32)
        x[..., 0] = 1.0
        x[..., 3] = 1.0
        return x

    grid = sample_grid(fake_generator, np.zeros((5, 3), np.float32), cols=4, min_side=1)
    head = 14  # each tile has a label bar ("k: image" / "k: mask channel") above it
    assert grid.dtype == np.uint8 and grid.shape[0] == 2 * (head + 4 + 4)  # 5 pairs -> 2 rows
    assert (grid[:head, :8] != 32).any(), "the label bar carries text"
    np.testing.assert_array_equal(grid[head, 0], [0, 0, 255])  # red in BGR
    np.testing.assert_array_equal(grid[head, 8], [128, 128, 128])  # a 2 px grey gap, then the mask
    np.testing.assert_array_equal(grid[head, 8 + 2], [255, 255, 255])
    assert (grid[-1, -1] == 32).all()  # unused grid cells stay background
    big = sample_grid(fake_generator, np.zeros((1, 3), np.float32), cols=1, min_side=16)
    assert big.shape[0] == head + 16 + 4  # small tiles are enlarged to min_side
