"""U-Net training: loss, update step, early stopping end to end, best-weight restore, resume."""
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_seg_aug.training import unet_trainer
from gan_seg_aug.training.checkpoints import read_latest
from gan_seg_aug.config import unet_config
from gan_seg_aug.data.base import TaskData
from gan_seg_aug.nets.networks import build_unet

SIZE = 16


class Interrupted(Exception):
    """Stands in for a kill / Ctrl-C in the middle of training."""


def _discs(n, rng):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    labels = np.zeros((n, SIZE, SIZE), np.uint8)
    for k in range(n):
        cy, cx = rng.uniform(5, 11, 2)
        labels[k] = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(3, 5) ** 2
    images = (labels[..., None] * 1.2 - 0.6 + rng.normal(0, 0.2, (n, SIZE, SIZE, 1))).clip(-1, 1)
    return images.astype(np.float32), labels


@pytest.fixture(scope="module")
def tiny():
    """24 disc images; the 6 validation cases have *inverted* labels, so fitting the training set
    raises the validation loss and the early-stopping rule has to stop (and restore) early."""
    rng = np.random.default_rng(0)
    images, labels = _discs(24, rng)
    ids = [f"C{i:02d}" for i in range(24)]
    labels[18:] = 1 - labels[18:]
    data = TaskData("scr_lung", "synthetic", ids, images, labels, np.ones((24, 2)), lambda i: labels[i])
    fold = {"fold": 1, "train": ids[:18], "val": ids[18:], "test": []}
    return data, fold


def _cfg(**kw):
    base = dict(height=SIZE, width=SIZE, unet_width_div=64, min_iterations=6, patience=4, val_every=2,
                max_iterations=60, learning_rate=1e-3)
    base.update(kw)
    return unet_config("scr_lung", "smoke", "4-0", **base)


def test_loss_is_the_mean_softmax_cross_entropy_and_equals_sigmoid_ce_for_two_classes():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (2, 3, 4))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = -np.log(np.take_along_axis(p, labels[..., None], -1)).mean()
    assert float(unet_trainer.pixel_cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-5)
    # Thesis §4.2.1 says "sigmoid"; with 2 classes it is the same number (sigmoid CE on b - a).
    z = logits[..., 1] - logits[..., 0]
    sigmoid_ce = np.mean(np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z))))
    assert float(unet_trainer.pixel_cross_entropy(labels, logits)) == pytest.approx(sigmoid_ce, rel=1e-5)


def test_train_step_reports_the_loss_before_the_update_and_moves_the_weights():
    keras.utils.set_random_seed(0)
    model = build_unet("scr_lung", height=SIZE, width=SIZE, width_div=64)
    opt = keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9)
    images, labels = _discs(4, np.random.default_rng(2))
    before = float(unet_trainer.pixel_cross_entropy(labels, model(images)))
    w0 = [w.copy() for w in model.get_weights()]
    out = unet_trainer.make_train_step(model, opt)(images, labels.astype(np.int32))
    assert set(out) == {"loss"}
    assert float(out["loss"]) == pytest.approx(before, rel=1e-5)
    assert any(not np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))


def test_xla_train_step_matches_the_graph_one():
    images, labels = _discs(4, np.random.default_rng(2))
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = build_unet("scr_lung", height=SIZE, width=SIZE, width_div=64)
        step = unet_trainer.make_train_step(model, keras.optimizers.SGD(0.1), jit_compile=jit)
        runs.append((float(step(images, labels.astype(np.int32))["loss"]), model.get_weights()))
    assert runs[1][0] == pytest.approx(runs[0][0], rel=1e-5)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_validation_loss_weights_every_pixel_equally_across_a_short_last_batch():
    keras.utils.set_random_seed(0)
    model = build_unet("scr_lung", height=SIZE, width=SIZE, width_div=64)
    images, labels = _discs(5, np.random.default_rng(3))
    whole = float(unet_trainer.pixel_cross_entropy(labels, model(images)))
    assert unet_trainer.make_validation_loss(model, images, labels, batch_size=2)() == pytest.approx(whole, rel=1e-5)


def test_train_unet_stops_by_the_rule_and_restores_the_best_weights(tiny, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    data, fold = tiny
    cfg = _cfg()
    s = unet_trainer.train_unet(cfg, data, fold, tmp_path / "run")
    assert s["stopped_by"] == "early_stopping"
    vals = [h["val_loss"] for h in s["history"]]
    assert s["best_val_loss"] == min(vals)
    assert s["best_iteration"] == s["history"][int(np.argmin(vals))]["iteration"]
    assert s["iterations"] == max(cfg.min_iterations, s["best_iteration"] + cfg.patience)
    assert vals[-1] > s["best_val_loss"]  # so restoring the minimum is not a no-op
    # The saved weights are the minimum's: they reproduce the recorded best validation loss.
    model = build_unet("scr_lung", height=SIZE, width=SIZE, width_div=64)
    model.load_weights(str(tmp_path / "run" / "best.weights.h5"))
    val_idx = data.indices(fold["val"])
    again = unet_trainer.make_validation_loss(model, data.images[val_idx], data.labels[val_idx], cfg.batch_size)()
    assert again == pytest.approx(s["best_val_loss"], rel=1e-5)
    # Outputs: config with provenance, history CSV, done marker; checkpoints cleaned up.
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["min_iterations"] == 6 and "git_commit" in config
    history = (run / "history.csv").read_text().splitlines()
    assert history[0] == "iteration,train_loss,val_loss" and len(history) == len(vals) + 1
    assert json.loads((run / "train_done.json").read_text())["iterations"] == s["iterations"]
    assert not (run / "checkpoints").exists()
    assert any("it/s" in line and "earliest stop" in line for line in caplog.messages)


def test_max_iterations_cap_is_recorded(tiny, tmp_path):
    data, fold = tiny
    s = unet_trainer.train_unet(_cfg(min_iterations=100, max_iterations=5), data, fold, tmp_path / "run")
    assert (s["stopped_by"], s["iterations"]) == ("max_iterations", 5)
    assert [h["iteration"] for h in s["history"]] == [2, 4, 5]  # validated at the cap too


_REAL_STEP = unet_trainer.make_train_step


def _counting_step(calls, fail_after=None):
    real = _REAL_STEP

    def make(model, optimizer, **kwargs):
        step = real(model, optimizer, **kwargs)

        def counted(images, labels):
            if fail_after is not None and len(calls) >= fail_after:
                raise Interrupted("injected interruption")
            calls.append(1)
            return step(images, labels)

        return counted

    return make


def test_interrupted_run_resumes_from_its_checkpoint(tiny, tmp_path, monkeypatch, caplog):
    data, fold = tiny
    cfg, run = _cfg(min_iterations=10, patience=4), tmp_path / "run"
    first = []
    monkeypatch.setattr(unet_trainer, "make_train_step", _counting_step(first, fail_after=5))
    with pytest.raises(Interrupted):
        unet_trainer.train_unet(cfg, data, fold, run)
    assert len(first) == 5
    _, iteration, _, saved = read_latest(run / "checkpoints")
    assert iteration == 4  # the last validation before the interruption
    assert saved["early_stopping"]["last_iteration"] == 4 and len(saved["history"]) == 2

    second = []
    monkeypatch.setattr(unet_trainer, "make_train_step", _counting_step(second))
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    s = unet_trainer.train_unet(cfg, data, fold, run)
    assert any("resuming from the checkpoint at iteration 4" in line for line in caplog.messages)
    assert s["resumed_from"] == 4
    assert len(second) == s["iterations"] - 4  # continued, not restarted
    its = [h["iteration"] for h in s["history"]]
    assert its[:2] == [2, 4] and its == sorted(set(its))
    assert s["history"][:2] == saved["history"]
    assert s["stopped_by"] == "early_stopping"
    assert s["iterations"] == max(10, s["best_iteration"] + 4)


def test_finished_run_is_reused_and_other_settings_are_refused(tiny, tmp_path, monkeypatch):
    data, fold = tiny
    run = tmp_path / "run"
    s = unet_trainer.train_unet(_cfg(max_iterations=4), data, fold, run)
    calls = []
    monkeypatch.setattr(unet_trainer, "make_train_step", _counting_step(calls, fail_after=0))
    again = unet_trainer.train_unet(_cfg(max_iterations=4), data, fold, run)
    assert again["iterations"] == s["iterations"] and again["best_val_loss"] == s["best_val_loss"]
    with pytest.raises(ValueError, match="other settings.*patience"):
        unet_trainer.train_unet(_cfg(max_iterations=4, patience=9), data, fold, run)


def test_a_raised_cap_lets_an_unfinished_run_carry_on_but_not_a_run_the_old_cap_ended(tiny, tmp_path, monkeypatch):
    data, fold = tiny
    run, calls = tmp_path / "run", []
    # interrupted at iteration 5 under a cap of 8: its last checkpoint (iteration 4) is below both caps
    monkeypatch.setattr(unet_trainer, "make_train_step", _counting_step(calls, fail_after=5))
    with pytest.raises(Interrupted):
        unet_trainer.train_unet(_cfg(min_iterations=40, patience=40, max_iterations=8), data, fold, run)
    monkeypatch.setattr(unet_trainer, "make_train_step", _counting_step([]))
    with pytest.raises(ValueError, match="at iteration 4 under a cap of 8 iterations; the cap is now 3"):
        unet_trainer.train_unet(_cfg(min_iterations=40, patience=40, max_iterations=3), data, fold, run)
    s = unet_trainer.train_unet(_cfg(min_iterations=40, patience=40, max_iterations=12), data, fold, run)
    assert (s["resumed_from"], s["iterations"], s["stopped_by"]) == (4, 12, "max_iterations")
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["max_iterations"] == 12 and config["max_iterations_before"] == 8
    # this run the cap of 12 ended: under a higher cap it would have trained on, so it is refused ...
    with pytest.raises(ValueError, match="ended at iteration 12 under a cap of 12 iterations; the cap is now 20"):
        unet_trainer.train_unet(_cfg(min_iterations=40, patience=40, max_iterations=20), data, fold, run)
    # ... while a run the thesis rule ended below both caps is the same run under either
    ruled = unet_trainer.train_unet(_cfg(min_iterations=4, patience=2, max_iterations=30), data, fold, tmp_path / "r")
    assert ruled["stopped_by"] == "early_stopping" and ruled["iterations"] < 30
    again = unet_trainer.train_unet(_cfg(min_iterations=4, patience=2, max_iterations=300), data, fold, tmp_path / "r")
    assert again["iterations"] == ruled["iterations"]


def test_bad_inputs_are_reported(tiny, tmp_path):
    data, fold = tiny
    with pytest.raises(ValueError, match="sampler"):
        unet_trainer.train_unet(unet_config("scr_lung", "smoke", "2-2", height=SIZE, width=SIZE), data, fold, tmp_path)
    with pytest.raises(ValueError, match="augment"):
        unet_trainer.train_unet(_cfg(augment=True), data, fold, tmp_path)
    with pytest.raises(ValueError, match="validation set"):
        unet_trainer.train_unet(_cfg(), data, {**fold, "val": []}, tmp_path)
    with pytest.raises(ValueError, match="no 'val'"):
        unet_trainer.train_unet(_cfg(), data, {"train": fold["train"]}, tmp_path)


def test_mixed_bfloat16_precision_trains_with_float32_loss_and_restores_the_policy(tiny, tmp_path):
    data, fold = tiny
    before = keras.config.dtype_policy().name
    s = unet_trainer.train_unet(_cfg(max_iterations=2, precision="mixed_bfloat16"), data, fold, tmp_path / "run")
    assert keras.config.dtype_policy().name == before
    assert s["iterations"] == 2 and all(np.isfinite([h["val_loss"] for h in s["history"]]))
    with unet_trainer.set_precision("mixed_bfloat16"):
        model = build_unet("scr_lung", height=SIZE, width=SIZE, width_div=64)
    assert model.get_layer("unet_enc1_conv1").compute_dtype == "bfloat16"
    images, labels = _discs(2, np.random.default_rng(4))
    out = unet_trainer.make_train_step(model, keras.optimizers.Adam(1e-4))(images, labels.astype(np.int32))
    assert out["loss"].dtype == tf.float32 and np.isfinite(float(out["loss"]))


def test_mixed_minibatches_with_a_generator_and_augmentation_train(tiny, tmp_path):
    from gan_seg_aug.augment.settings import AUG_PRESETS
    from gan_seg_aug.nets.networks import build_generator
    from gan_seg_aug.training.minibatches import GeneratorSampler

    data, fold = tiny
    keras.utils.set_random_seed(0)
    sampler = GeneratorSampler(build_generator("scr_lung", height=SIZE, width=SIZE, width_div=64, latent_dim=8),
                               8, 2, seed=0, chunk=4)
    aug = AUG_PRESETS["scr_lung"].scaled(SIZE / 256)
    cfg = unet_config("scr_lung", "smoke", "2-2", augment=True, height=SIZE, width=SIZE, unet_width_div=64,
                      min_iterations=10, patience=4, val_every=2, max_iterations=2)
    s = unet_trainer.train_unet(cfg, data, fold, tmp_path / "run", sampler=sampler, aug=aug)
    assert (s["iterations"], s["stopped_by"], s["network_id"]) == (2, "max_iterations", "2-2-Aug")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["aug"]["translate_std"] == pytest.approx(10 * SIZE / 256)
    assert (saved["config"]["n_real"], saved["config"]["n_generated"]) == (2, 2)


def test_a_finished_run_the_old_cap_ended_is_refused_by_the_experiment_under_a_raised_cap(tmp_path, monkeypatch):
    import dataclasses
    from gan_seg_aug import config as C, experiment

    s = experiment.RunSettings("scr_lung", mix="16-0", profile="smoke", runs_dir=str(tmp_path), quality=False)
    first = experiment.run(s)
    run_dir = next(tmp_path.glob("scr_lung/smoke/*/fold1/16-0-NoAug"))
    smoke = C.PROFILE_TABLE["smoke"]
    monkeypatch.setitem(C.PROFILE_TABLE, "smoke", dataclasses.replace(smoke, unet_max_iterations=500))
    summary = json.loads((run_dir / "summary.json").read_text())
    for stopped_by, iterations, refused in (("early_stopping", 12, False), ("max_iterations", 20, True)):
        (run_dir / "summary.json").write_text(json.dumps(summary | {"stopped_by": stopped_by,
                                                                    "unet_iterations": iterations}))
        if refused:
            with pytest.raises(ValueError, match="ended at its cap of 20 iterations; the profile's cap is now 500"):
                experiment.run(s)
        else:
            assert experiment.run(s)["test"] == first["test"]  # the rule ended it: the same run, reused
