"""Standard augmentation ops (thesis §2.7; paper Tables I / III): every op eagerly and in Dataset.map."""
import numpy as np
import pytest
import tensorflow as tf

from gan_seg_aug.augment import ops as A
from gan_seg_aug.augment.settings import AUG_PRESETS, AugParams

MODES = ("eager", "dataset_map")


def run_seeds(op, sample, mode, seeds):
    """``op(sample, seed)`` for each seed, eagerly or inside ONE tf.data.Dataset.map (one trace);
    a list of NumPy sample dicts."""
    if mode == "eager":
        outs = [op(sample, seed) for seed in seeds]
    else:
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(seeds, tf.int64)).map(lambda k: op(sample, k))
        outs = list(ds)
    return [{k: np.asarray(v) for k, v in out.items()} for out in outs]


def run(op, sample, mode, seed=1):
    return run_seeds(op, sample, mode, [seed])[0]


def blob_sample(h=48, w=40, channels=1, seed=0, n_classes=2):
    """Smooth image in [-1, 1] and a mask of ``n_classes`` large regions (a centred rectangle for 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    image = np.stack([np.sin(xx / (4.0 + c) + rng.uniform(0, 3)) * np.cos(yy / 5.0) for c in range(channels)], -1)
    if n_classes == 2:
        mask = ((abs(yy - h / 2) < h / 5) & (abs(xx - w / 2) < w / 6)).astype(np.uint8)
    else:
        mask = ((yy * n_classes) // h).astype(np.uint8)  # horizontal bands 0..K-1
    return {"image": image.astype(np.float32), "mask": mask}


# --- parameters ------------------------------------------------------------------------------------

def test_presets_are_the_papers_bold_rows():
    assert AUG_PRESETS["scr_lung"] == AugParams(shift_std=0.05, scale_std=0.05, translate_std=10.0, flip=False,
                                                elastic_std=10.0, elastic_mesh=3, elastic_order=3)
    assert AUG_PRESETS["cityscapes"] == AugParams(flip=True)
    assert AugParams().is_identity and not AUG_PRESETS["cityscapes"].is_identity


def test_scaled_changes_pixel_parameters_only():
    p = AUG_PRESETS["scr_lung"].scaled(0.5)
    assert (p.translate_std, p.elastic_std) == (5.0, 5.0)
    assert (p.shift_std, p.scale_std, p.flip, p.elastic_mesh, p.elastic_order) == (0.05, 0.05, False, 3, 3)
    with pytest.raises(ValueError, match="positive factor"):
        p.scaled(0)


@pytest.mark.parametrize("kwargs, field", [
    ({"shift_std": -0.1}, "shift_std"), ({"translate_std": float("nan")}, "translate_std"),
    ({"elastic_mesh": 0}, "elastic_mesh"), ({"elastic_order": 4}, "elastic_order"), ({"flip": "yes"}, "flip"),
])
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"AugParams.{field}"):
        AugParams(**kwargs)


def test_seed_forms():
    assert A.as_seed(7).numpy().tolist() == [7, 0]
    assert A.as_seed(tf.constant([3, 4])).numpy().tolist() == [3, 4]
    with pytest.raises(ValueError, match="seed"):
        A.as_seed(tf.constant([1, 2, 3]))


# --- identity at sigma = 0 -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", [
    lambda s, k: A.intensity_shift(s, 0.0, k), lambda s, k: A.intensity_scale(s, 0.0, k),
    lambda s, k: A.translate(s, 0.0, k), lambda s, k: A.elastic(s, 0.0, k),
    lambda s, k: A.augment(s, AugParams(), k), lambda s, k: A.augment(s, None, k),
], ids=["shift", "scale", "translate", "elastic", "augment", "augment_none"])
def test_zero_sigma_is_identity(op, mode):
    s = blob_sample(channels=3)
    out = run(op, s, mode)
    np.testing.assert_array_equal(out["image"], s["image"])
    np.testing.assert_array_equal(out["mask"], s["mask"])
    assert out["mask"].dtype == np.uint8 and out["image"].dtype == np.float32


# --- flip ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_flip_is_its_own_inverse_and_a_mirror(mode):
    s = blob_sample(n_classes=3)
    s["mask"][:, :5] = 2  # left-right asymmetric, so a flip is visible in the mask too
    flipped, seeds = 0, list(range(12))
    onces = run_seeds(lambda x, k: A.hflip(x, k), s, mode, seeds)
    twices = run_seeds(lambda x, k: A.hflip(A.hflip(x, k), k), s, mode, seeds)
    for seed, once, twice in zip(seeds, onces, twices):
        np.testing.assert_array_equal(twice["image"], s["image"])
        np.testing.assert_array_equal(twice["mask"], s["mask"])
        if bool(A.draw_flip(seed)):
            flipped += 1
            np.testing.assert_array_equal(once["image"], s["image"][:, ::-1])
            np.testing.assert_array_equal(once["mask"], s["mask"][:, ::-1])
        else:
            np.testing.assert_array_equal(once["image"], s["image"])
    assert 0 < flipped < 12  # p = 0.5: both outcomes occur over a dozen seeds


# --- translation -----------------------------------------------------------------------------------

def centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([ys.mean(), xs.mean()])


@pytest.mark.parametrize("mode", MODES)
def test_translation_moves_the_mask_centroid_by_the_drawn_amount(mode):
    s = blob_sample(h=64, w=64)
    moved, seeds = 0, list(range(6))
    for seed, out in zip(seeds, run_seeds(lambda x, k: A.translate(x, 4.0, k), s, mode, seeds)):
        shift = A.draw_translation(4.0, seed).numpy()
        np.testing.assert_allclose(centroid(out["mask"]) - centroid(s["mask"]), shift, atol=1e-9)
        assert out["mask"].sum() == s["mask"].sum()  # the blob is away from the border: nothing lost
        moved += bool(np.any(shift))
    assert moved > 0


def test_translation_repeats_edges_and_handles_huge_shifts():
    s = blob_sample(h=16, w=12)
    out = {k: np.asarray(v) for k, v in A.shift_pixels(s, 3, -2).items()}
    np.testing.assert_array_equal(out["image"][3:, :-2], s["image"][:-3, 2:])
    np.testing.assert_array_equal(out["image"][:3, :-2], np.repeat(s["image"][:1, 2:], 3, axis=0))
    np.testing.assert_array_equal(out["image"][3:, -2:], np.repeat(s["image"][:-3, -1:], 2, axis=1))
    far = {k: np.asarray(v) for k, v in A.shift_pixels(s, 100, -100).items()}
    np.testing.assert_array_equal(far["image"], np.broadcast_to(s["image"][0, -1], s["image"].shape))


# --- intensity ops ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_intensity_ops_change_the_image_by_one_scalar_and_leave_the_mask(mode):
    s = blob_sample(channels=3, n_classes=8)
    shifted = run(lambda x, k: A.intensity_shift(x, 0.3, k), s, mode, seed=5)
    d = shifted["image"] - s["image"]
    assert abs(d.mean()) > 1e-4 and np.ptp(d) < 1e-5
    scaled = run(lambda x, k: A.intensity_scale(x, 0.3, k), s, mode, seed=5)
    ratio = scaled["image"][np.abs(s["image"]) > 0.1] / s["image"][np.abs(s["image"]) > 0.1]
    assert abs(ratio.mean() - 1) > 1e-4 and np.ptp(ratio) < 1e-4
    for out in (shifted, scaled):
        np.testing.assert_array_equal(out["mask"], s["mask"])


def test_intensity_draws_follow_the_stated_gaussians():
    s = {"image": np.ones((2, 2, 1), np.float32), "mask": np.zeros((2, 2), np.uint8)}
    f = tf.function(lambda seed: (A.intensity_shift(s, 0.05, seed)["image"][0, 0, 0] - 1,
                                  A.intensity_scale(s, 0.05, seed)["image"][0, 0, 0]))
    draws = np.array([[float(v) for v in f(tf.constant([k, 9]))] for k in range(400)])
    assert abs(draws[:, 0].mean()) < 0.01 and 0.04 < draws[:, 0].std() < 0.06
    assert abs(draws[:, 1].mean() - 1) < 0.01 and 0.04 < draws[:, 1].std() < 0.06


# --- elastic and the full preset -------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_elastic_keeps_the_label_set_and_moves_image_and_mask_together(mode):
    s = blob_sample(h=64, w=64, n_classes=4)
    out = run(lambda x, k: A.elastic(x, 3.0, k), s, mode, seed=11)
    assert set(np.unique(out["mask"])) == set(np.unique(s["mask"]))
    assert not np.array_equal(out["mask"], s["mask"])
    # the same field moves both: compare with the NumPy fast path given the same coefficients
    from gan_seg_aug.augment import elastic as E

    img, msk = E.warp(s["image"], s["mask"], A.draw_elastic(3.0, 11).numpy())
    np.testing.assert_array_equal(out["image"], img)
    np.testing.assert_array_equal(out["mask"], msk)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task, channels, n_classes", [("scr_lung", 1, 2), ("cityscapes", 3, 8)])
def test_presets_keep_masks_categorical(task, channels, n_classes, mode):
    s = blob_sample(h=64, w=64, channels=channels, n_classes=n_classes)
    params = AUG_PRESETS[task].scaled(0.25)
    for out in run_seeds(lambda x, k: A.augment(x, params, k), s, mode, [0, 1, 2]):
        assert out["mask"].dtype == np.uint8 and out["image"].shape == s["image"].shape
        assert set(np.unique(out["mask"])) <= set(np.unique(s["mask"]))


@pytest.mark.parametrize("mode", MODES)
def test_elastic_backends_give_the_same_augmentation(mode):
    """--elastic-backend simpleitk resamples with SimpleITK what the fast path evaluates with cv2:
    the same draw, the same field, translation and flip applied the same way."""
    import dataclasses

    s = blob_sample(h=64, w=64)
    fast = AugParams(translate_std=3.0, flip=True, elastic_std=3.0, shift_std=0.05)
    itk = dataclasses.replace(fast, elastic_backend="simpleitk")
    for seed in (1, 2, 5):
        a = run(lambda x, k: A.augment(x, fast, k), s, mode, seed)
        b = run(lambda x, k: A.augment(x, itk, k), s, mode, seed)
        assert np.abs(a["image"] - b["image"]).max() < 1e-3
        assert (a["mask"] == b["mask"]).mean() > 0.995
    with pytest.raises(ValueError, match="elastic_backend"):
        AugParams(elastic_backend="scipy")


def test_augment_is_deterministic_per_seed_and_differs_across_seeds():
    s = blob_sample(h=64, w=64)
    p = AUG_PRESETS["scr_lung"].scaled(0.25)
    a, b, c = (A.augment(s, p, seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("mode", MODES)
def test_augment_equals_the_ops_in_the_documented_order(mode):
    """The fused geometric pass (translation and flip folded into the elastic remap) gives exactly
    elastic -> translate -> flip -> shift -> scale with each op's own seed slot."""
    s = blob_sample(h=40, w=48, channels=3, n_classes=8)
    p = AugParams(shift_std=0.1, scale_std=0.1, translate_std=3.0, flip=True, elastic_std=2.0)

    def by_hand(x, seed):
        k = tf.random.experimental.stateless_split(A.as_seed(seed), len(A._SLOT))
        x = A.elastic(x, p.elastic_std, k[A._SLOT["elastic"]])
        x = A.translate(x, p.translate_std, k[A._SLOT["translate"]])
        x = A.hflip(x, k[A._SLOT["flip"]])
        x = A.intensity_shift(x, p.shift_std, k[A._SLOT["shift"]])
        return A.intensity_scale(x, p.scale_std, k[A._SLOT["scale"]])

    seeds = [0, 1, 2, 3]
    for fused, manual in zip(run_seeds(lambda x, k: A.augment(x, p, k), s, mode, seeds),
                             run_seeds(by_hand, s, mode, seeds)):
        np.testing.assert_allclose(fused["image"], manual["image"], atol=1e-6)
        np.testing.assert_array_equal(fused["mask"], manual["mask"])


def test_int32_masks_and_extra_keys_pass_through():
    s = blob_sample(n_classes=3)
    s = {**s, "mask": s["mask"].astype(np.int32), "case_id": tf.constant("JPCLN001")}
    out = A.augment(s, AugParams(elastic_std=2.0, translate_std=2.0), 0)
    assert out["mask"].dtype == tf.int32 and out["case_id"].numpy() == b"JPCLN001"
