"""The GAN quality report on constructed generators whose answer is known: one that replays the real
training pairs (consistent, KID ~ 0, memorising) and one that emits noise (inconsistent, far)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from gan_seg_aug.data.mask_encoding import encode_mask  # noqa: E402
from gan_seg_aug.evaluation.gan_quality import QualitySettings, generate_pairs, headline, quality_report  # noqa: E402
from gan_seg_aug.nets.networks import build_unet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
S = 32


def discs(n, seed):
    """Bright discs (the "lung", label 1) on a dark noisy background: easy to segment, varied in place."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:S, :S]
    labels = np.zeros((n, S, S), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(5, 9)
        labels[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
    images = np.where(labels[..., None] == 1, 0.6, -0.6) + rng.normal(0, 0.15, (n, S, S, 1))
    return np.clip(images, -1, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def setting():
    train, val = discs(48, 0), discs(16, 1)
    keras.utils.set_random_seed(0)
    unet = build_unet("scr_lung", height=S, width=S, width_div=4)
    unet.compile(optimizer=keras.optimizers.Adam(3e-3),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    unet.fit(train[0], train[1], batch_size=16, epochs=40, verbose=0)
    return train, val, unet


class Replay:
    """A "generator" that returns real training pairs (image + encoded mask channel), cycling."""

    def __init__(self, images, labels):
        self.pairs = np.concatenate([images, encode_mask(labels, 2)[..., None]], axis=-1)
        self.k = 0

    def __call__(self, z, training=False):
        n = int(z.shape[0])
        idx = (self.k + np.arange(n)) % len(self.pairs)
        self.k += n
        return tf.constant(self.pairs[idx])


class Noise:
    def __call__(self, z, training=False):
        seed = int(abs(float(z[0, 0])) * 1e6)
        return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (int(z.shape[0]), S, S, 2)).astype(np.float32))


def test_replaying_the_training_pairs_is_consistent_close_and_flagged_as_memorising(setting):
    train, val, unet = setting
    rep, _ = quality_report(Replay(*train), 8, "scr_lung", train, val, unet, QualitySettings(n=48))
    ceiling = rep["pair_consistency"]["real_val_ceiling"]
    assert ceiling > 0.85, "the reference U-Net should segment the discs"
    assert rep["pair_consistency"]["generated"] >= ceiling - 0.05
    feats = rep["features"]
    # ~0: the same distribution (unbiased, so it may dip below 0); noise scores ~2 in this feature space
    assert abs(feats["kid_vs_train"]) < 1e-2
    assert feats["precision"] == pytest.approx(1.0) and feats["recall"] == pytest.approx(1.0)
    assert rep["memorisation"]["fraction_below"] == pytest.approx(1.0)
    assert rep["masks"]["generated"]["one_component_fraction"] == pytest.approx(1.0)
    assert rep["masks"]["generated"]["area_w1"] < 1e-9


def test_noise_scores_low_everywhere(setting):
    train, val, unet = setting
    noise, _ = quality_report(Noise(), 8, "scr_lung", train, val, unet, QualitySettings(n=48))
    replay, _ = quality_report(Replay(*train), 8, "scr_lung", train, val, unet, QualitySettings(n=48))
    assert noise["pair_consistency"]["generated"] < 0.7
    assert noise["features"]["kid_vs_train"] > 10 * max(replay["features"]["kid_vs_train"], 1e-4)
    assert noise["features"]["fd_vs_train"] > 10 * max(replay["features"]["fd_vs_train"], 1e-3)
    assert noise["features"]["precision"] < 0.2 and noise["features"]["recall"] < 0.2
    assert noise["memorisation"]["fraction_below"] == 0.0
    assert noise["masks"]["generated"]["one_component_fraction"] < 0.2
    assert set(headline(noise)) >= {"pair_consistency", "kid_vs_train", "precision", "recall", "memorised_fraction"}


def test_cheap_subset_and_no_reference(setting):
    train, val, _ = setting
    rep, arrays = quality_report(Replay(*train), 8, "scr_lung", train, val, None, QualitySettings(n=16, cheap=True))
    assert "pair_consistency" not in rep and "memorisation" not in rep and "masks" in rep
    assert len(arrays["images"]) == 16


def test_sampling_bn_batch_uses_batch_statistics_and_leaves_moving_averages_alone():
    from gan_seg_aug.nets.networks import build_generator

    keras.utils.set_random_seed(0)
    g = build_generator("scr_lung", height=32, width=32, width_div=32, latent_dim=8)
    g(np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32) * 3 + 1, training=True)  # move the averages
    moving, _ = generate_pairs(g, 8, 8, 2, sampling_bn="moving", seed=1, chunk=8)
    batch, _ = generate_pairs(g, 8, 8, 2, sampling_bn="batch", seed=1, chunk=8)
    z = np.random.default_rng([1, 7]).standard_normal((8, 8)).astype(np.float32)
    np.testing.assert_allclose(moving, np.asarray(g(z, training=False))[..., :-1], atol=1e-5)
    np.testing.assert_allclose(batch, np.asarray(g(z, training=True))[..., :-1], atol=1e-5)  # (moves the averages)
    assert np.abs(batch - moving).max() > 1e-3, "the two modes must differ once the averages moved"
    g2 = build_generator("scr_lung", height=32, width=32, width_div=32, latent_dim=8)
    g2.set_weights(g.get_weights())
    saved = [v.numpy().copy() for v in g2.non_trainable_variables]
    generate_pairs(g2, 8, 8, 2, sampling_bn="batch", seed=1, chunk=8)
    for v, s in zip(g2.non_trainable_variables, saved):
        np.testing.assert_array_equal(v.numpy(), s)


def test_sampler_option_reaches_the_generator():
    from gan_seg_aug.training.minibatches import GeneratorSampler

    calls = []

    class Spy:
        def __call__(self, z, training=False):
            calls.append(training)
            return tf.zeros((int(z.shape[0]), 4, 4, 2))

    GeneratorSampler(Spy(), 8, 2, training=True, chunk=8).sample(8)
    assert calls and all(c is True for c in calls)
    calls.clear()
    GeneratorSampler(Spy(), 8, 2).sample(8)
    assert calls and all(c is False for c in calls)


@pytest.mark.slow
def test_quality_command_on_the_smoke_sweep(smoke_sweep):
    from gan_seg_aug.config import GANConfig
    from gan_seg_aug.layout import gan_dir_name

    gan_dir = smoke_sweep["runs"] / "scr_lung" / "smoke" / "synthetic" / "fold1" / gan_dir_name(GANConfig.critic_norm)
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "gan_quality.py"), "--gan-dir", str(gan_dir),
                           "--n", "16", "--sampling-bn", "batch", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["reports"]) == {"batch"} and "pair_consistency" in out["reports"]["batch"]
    assert (gan_dir / "quality" / "gan_quality_bn-batch.json").exists()
    assert (gan_dir / "quality" / "gan_quality_bn-batch.png").exists()
    assert (gan_dir / "quality" / "gan_quality_bn-moving.json").exists(), "written when the GAN finished"
    bad = subprocess.run([sys.executable, str(REPO / "experiments" / "gan_quality.py"), "--gan-dir",
                          str(gan_dir / "nope")], capture_output=True, text=True)
    assert bad.returncode != 0 and "not a finished GAN run" in bad.stderr and bad.stderr.count("\n") <= 1


def test_concerns_name_each_shortfall_against_its_reference_and_nothing_else():
    from gan_seg_aug.evaluation.gan_quality import concerns

    good = {"pair_consistency": {"generated": 0.95, "real_val_ceiling": 0.97},
            "features": {"precision": 0.9, "recall": 0.85, "precision_real_val": 0.93, "recall_real_val": 0.9},
            "masks": {"generated": {"one_component_fraction": 0.95}, "real_val": {"one_component_fraction": 1.0}},
            "memorisation": {"fraction_below": 0.08, "percentile": 5.0}}
    assert concerns(good) == []
    bad = {**good, "memorisation": {"fraction_below": 0.4, "percentile": 5.0},
           "masks": {"generated": {"one_component_fraction": 0.5}, "real_val": {"one_component_fraction": 1.0}}}
    found = concerns(bad)
    assert len(found) == 2 and found[0].startswith("one-component masks 0.50 (real 1.00)")
    assert found[1].startswith("memorised fraction 0.40 (chance 0.05)")
