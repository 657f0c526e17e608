"""The embedded procedural datasets: interface, determinism, anatomy / scene layout, splits."""
import hashlib

import numpy as np
import pytest

from gan_seg_aug.config import task_spec
from gan_seg_aug.data.splits import make_split
from gan_seg_aug.data.synthetic import (cityscapes_case, cityscapes_case_id, cityscapes_group, make_cityscapes,
                                        make_scr_lung, scr_lung_case, scr_lung_case_id)
from gan_seg_aug.data.synthetic_common import smooth_field, soften

N_SCR, N_CITY = 40, 70  # enough cases for the statistics below, about a second each to make


@pytest.fixture(scope="module")
def scr():
    return make_scr_lung(n_cases=N_SCR, seed=0)


@pytest.fixture(scope="module")
def city():
    return make_cityscapes(n_cases=N_CITY, seed=0)


@pytest.fixture(scope="module")
def scr_parts():
    return [scr_lung_case(i, 0, parts=True) for i in range(N_SCR)]


# --- the TaskData interface ------------------------------------------------------------------

def test_scr_matches_the_task_interface(scr):
    spec = task_spec("scr_lung")
    assert scr.task == "scr_lung" and scr.source == "synthetic" and scr.groups is None
    assert scr.images.shape == (N_SCR, spec.height, spec.width, spec.image_channels)
    assert scr.images.dtype == np.float32 and scr.labels.dtype == np.uint8
    assert scr.images.min() >= -1.0 and scr.images.max() <= 1.0
    assert scr.images.max() - scr.images.min() > 1.5  # uses the range, not a flat image
    assert set(np.unique(scr.labels).tolist()) == {0, 1}
    assert (scr.labels.reshape(N_SCR, -1).sum(1) > 2000).all()  # every case has a real lung
    assert scr.case_ids[0] == "SYN001" and scr.case_ids[-1] == f"SYN{N_SCR:03d}"
    assert np.allclose(scr.spacing_mm, 1.4)
    assert scr.origin == {"format": "synthetic", "generator": "gan_seg_aug.data.synthetic", "seed": 0}


def test_cityscapes_matches_the_task_interface(city):
    spec = task_spec("cityscapes")
    assert city.task == "cityscapes" and city.source == "synthetic"
    assert city.images.shape == (N_CITY, spec.height, spec.width, spec.image_channels)
    assert city.images.dtype == np.float32 and city.labels.dtype == np.uint8
    assert city.images.min() >= -1.0 and city.images.max() <= 1.0
    assert city.labels.max() <= spec.n_classes - 1
    assert np.all(city.spacing_mm == 1.0)
    assert city.origin["format"] == "synthetic" and city.origin["seed"] == 0
    assert len(city.groups) == N_CITY and set(city.groups) == {"train", "val"}


def test_native_labels_are_the_labels_and_cannot_be_edited_through(scr, city):
    for data in (scr, city):
        gt = data.native_label(3)
        assert np.array_equal(gt, data.labels[3])
        gt[:] = 9
        assert data.labels[3].max() < 8
    sub = city.limited(14)  # limited() re-indexes native_label_fn
    j = len(sub) - 1
    assert np.array_equal(sub.native_label(j), city.labels[city.indices([sub.case_ids[j]])[0]])


def test_resizing_for_the_cpu_profile_keeps_labels_valid(scr):
    small = scr.limited(4).resized(128, 128)
    assert small.images.shape == (4, 128, 128, 1) and set(np.unique(small.labels)) <= {0, 1}


@pytest.mark.parametrize("call, match", [
    (lambda: make_scr_lung(0), "n_cases"), (lambda: make_scr_lung(2.5), "n_cases"),
    (lambda: make_scr_lung(3, seed=-1), "seed"), (lambda: make_cityscapes(1), "n_cases"),
    (lambda: scr_lung_case(-1), "index")])
def test_bad_arguments_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- determinism -----------------------------------------------------------------------------

def test_same_seed_same_bytes_and_other_seed_differs(scr, city):
    again = make_scr_lung(n_cases=5, seed=0)
    assert again.images.tobytes() == scr.images[:5].tobytes()  # also: fewer cases = a prefix
    assert again.labels.tobytes() == scr.labels[:5].tobytes()
    other = make_scr_lung(n_cases=5, seed=1)
    assert not np.array_equal(other.images, again.images) and not np.array_equal(other.labels, again.labels)
    c2 = make_cityscapes(n_cases=4, seed=0)
    assert c2.images.tobytes() == city.images[:4].tobytes() and c2.labels.tobytes() == city.labels[:4].tobytes()
    assert not np.array_equal(make_cityscapes(n_cases=4, seed=7).labels, c2.labels)


def test_one_case_can_be_regenerated_alone(scr, city):
    img, lab = scr_lung_case(17, 0)
    assert np.array_equal(img, scr.images[17]) and np.array_equal(lab, scr.labels[17])
    img, lab = cityscapes_case(33, 0)
    assert np.array_equal(img, city.images[33]) and np.array_equal(lab, city.labels[33])


# Recorded on the reference machine (NumPy 2.4, OpenCV 4.13 / cv2 5.0).  Every float step is a
# single correctly rounded IEEE operation or an exact integer sum, so these must hold anywhere;
# a mismatch means a platform-dependent path crept in (or the generator was changed on purpose:
# then update the digests and say so in the change).
GOLDEN = {("scr", 0): "ba07093b6eb54d1ab873", ("scr", 5): "95f6a399ced030274996",
          ("city", 0): "72ef8622373a3bd967b2", ("city", 5): "5baa9cf1bbc26c514fa4"}


@pytest.mark.parametrize("which, index", sorted(GOLDEN))
def test_cases_are_bit_identical_to_the_reference_machine(which, index):
    img, lab = (scr_lung_case if which == "scr" else cityscapes_case)(index, 0)
    assert hashlib.sha256(img.tobytes() + lab.tobytes()).hexdigest()[:20] == GOLDEN[(which, index)]


def test_soften_is_an_exact_repeated_box_filter():
    rng = np.random.default_rng(3)
    a = rng.integers(-50, 300, (23, 31))
    r, passes = 2, 2
    ref = a.astype(np.int64)
    for _ in range(passes):  # brute force: sum over the window of the edge-replicated map
        p = np.pad(ref, r, mode="edge")
        ref = sum(p[dy:dy + a.shape[0], dx:dx + a.shape[1]] for dy in range(2 * r + 1) for dx in range(2 * r + 1))
    assert np.array_equal(soften(a, r, passes), ref / float((2 * r + 1) ** (2 * passes)))
    with pytest.raises(TypeError, match="integer"):
        soften(a.astype(np.float64), 1)


def test_smooth_field_is_smooth_and_in_range():
    f = smooth_field(np.random.default_rng(0), (64, 96), (2, 3))
    assert f.shape == (64, 96) and 0.0 <= f.min() and f.max() <= 1.0
    assert np.abs(np.diff(f, axis=1)).max() < 0.1 and np.abs(np.diff(f, axis=0)).max() < 0.1
    assert f.max() - f.min() > 0.2


# --- SCR: what the paper's task needs --------------------------------------------------------

def test_left_lung_is_on_the_image_right_in_every_case(scr):
    w = scr.labels.shape[2]
    right = scr.labels[:, :, w // 2:].reshape(N_SCR, -1).sum(1)
    assert (right / scr.labels.reshape(N_SCR, -1).sum(1) > 0.9).all()


def test_heart_is_brighter_than_the_left_lung(scr_parts):
    brighter = [img[..., 0][p["heart"] > 0].mean() > img[..., 0][lab > 0].mean() for img, lab, p in scr_parts]
    assert np.mean(brighter) >= 0.95


def test_label_is_the_left_lung_field_without_the_heart(scr_parts):
    for img, lab, p in scr_parts:
        assert np.array_equal(lab, p["left_lung"])
        assert not (lab & p["heart"]).any() and not (lab & p["right_lung"]).any()


def test_lungs_are_darker_than_the_surrounding_body(scr_parts):
    for img, lab, p in scr_parts:
        x = img[..., 0]
        soft_tissue = (p["body"] > 0) & (lab == 0) & (p["right_lung"] == 0)
        assert x[soft_tissue].mean() > x[lab > 0].mean() + 0.1
        assert x[p["body"] == 0].mean() < x[soft_tissue].mean()  # dark background outside the body


def test_cases_vary(scr):
    areas = scr.labels.reshape(N_SCR, -1).sum(1)
    assert areas.std() / areas.mean() > 0.05
    centroids = [np.argwhere(lb).mean(0) for lb in scr.labels]
    assert np.std(centroids, axis=0).min() > 1.0  # positions move in both directions


# --- Cityscapes: the 8 categories in a street layout -----------------------------------------

def test_all_categories_occur_and_most_images_have_most_of_them(city):
    present = np.stack([(city.labels == k).any(axis=(1, 2)) for k in range(8)], axis=1)
    assert present.any(axis=0).all(), f"categories never drawn: {np.flatnonzero(~present.any(axis=0))}"
    assert (present.sum(axis=1) >= 6).mean() >= 0.8
    assert present.mean(axis=0).min() >= 0.5  # even humans / vehicles are in most images


def test_sky_on_top_void_at_the_bottom(city):
    lab = city.labels
    sky_top, sky_bottom = (lab[:, :16] == 5).mean(), (lab[:, 64:] == 5).mean()
    void_bottom, void_top = (lab[:, -6:] == 0).mean(), (lab[:, :64] == 0).mean()
    assert sky_top > 0.25 and sky_bottom == 0.0
    assert void_bottom > 0.9 and void_top == 0.0
    flat_rows = (lab == 1).mean(axis=(0, 2))
    assert flat_rows[80:110].mean() > 0.4 > flat_rows[:30].mean()  # the ground is below the horizon


def test_groups_follow_the_official_proportion():
    groups = [cityscapes_group(i) for i in range(347)]
    assert groups.count("val") == 50 and groups.count("train") == 297
    assert abs(groups.count("val") / 347 - 500 / 3475) < 0.01
    ids = [cityscapes_case_id(i) for i in range(3475)]
    assert len(set(ids)) == 3475
    assert ids[:3] == ["syn_train_0001", "syn_val_0001", "syn_train_0002"]
    assert all(c.startswith(f"syn_{g}_") for c, g in zip(ids, (cityscapes_group(i) for i in range(3475))))


def test_cityscapes_ids_and_groups_match_the_dataset(city):
    assert city.case_ids == [cityscapes_case_id(i) for i in range(N_CITY)]
    assert city.groups == [cityscapes_group(i) for i in range(N_CITY)]


# --- the paper's split procedure runs on these ids ---------------------------------------------

def test_paper_splits_work_on_the_full_synthetic_ids():
    ids = [scr_lung_case_id(i) for i in range(247)]
    s = make_split("scr_lung", ids)
    assert [(len(f["train"]), len(f["val"]), len(f["test"])) for f in s["folds"]] == \
        [(134, 30, 83), (135, 30, 82), (135, 30, 82)]
    assert sorted(sum((f["test"] for f in s["folds"]), [])) == sorted(ids)
    cids = [cityscapes_case_id(i) for i in range(347)]
    c = make_split("cityscapes", cids, [cityscapes_group(i) for i in range(347)])
    fold = c["folds"][0]
    assert len(fold["test"]) == 50 and all(x.startswith("syn_val_") for x in fold["test"])
    assert len(fold["val"]) == round(400 * 297 / 2975) and len(fold["train"]) == 297 - len(fold["val"])


def test_paper_splits_work_on_small_synthetic_datasets(scr, city):
    s = make_split("scr_lung", scr.case_ids, scr.groups)
    assert all(set(f["train"]) | set(f["val"]) | set(f["test"]) == set(scr.case_ids) for f in s["folds"])
    c = make_split("cityscapes", city.case_ids, city.groups)["folds"][0]
    assert set(c["test"]) == {i for i, g in zip(city.case_ids, city.groups) if g == "val"}
    assert c["train"] and c["val"] and not set(c["train"]) & set(c["val"])


@pytest.mark.realdata
def test_synthetic_left_lung_resembles_the_real_scr_masks(scr, shared_data):
    """Size and position of the synthetic left lung against the real SCR masks (sample of 40)."""
    from PIL import Image

    files = sorted((shared_data / "jsrt_scr_sample" / "masks" / "left_lung").glob("*.gif"))
    if not files:
        pytest.skip("no SCR left-lung masks in the real data sample")
    real = [np.array(Image.open(f).convert("L").resize((256, 256), Image.NEAREST)) > 127 for f in files]
    real_area = np.array([m.sum() for m in real])
    real_centre = np.mean([np.argwhere(m).mean(0) for m in real], axis=0)
    syn_area = scr.labels.reshape(N_SCR, -1).sum(1)
    syn_centre = np.mean([np.argwhere(m).mean(0) for m in scr.labels], axis=0)
    assert real_area.min() * 0.8 <= syn_area.mean() <= real_area.max()
    assert np.abs(syn_centre - real_centre).max() < 15.0  # pixels at 256x256
