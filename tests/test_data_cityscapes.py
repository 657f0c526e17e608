"""Cityscapes loading: the official layout and the pix2pix variant on small trees written here,
the label table against the official CSV, and the real samples in ../shared/data (realdata;
conftest's ``shared_data`` fixture skips when it is absent)."""
import csv
import logging

import numpy as np
import pytest
from PIL import Image

from gan_seg_aug.data import cityscapes as cs
from gan_seg_aug.data.loaders import DataError, load_task

# 4 x 2 blocks of labelIds on a 512x256 frame: road, building, sky, car / sidewalk, vegetation, person, ego vehicle
BLOCK_IDS = np.array([[7, 11, 23, 26], [8, 21, 24, 1]])
BLOCK_CATS = np.array([[1, 2, 5, 7], [1, 4, 6, 0]])


def frame(w=512):
    """A 2:1 RGB ramp and its labelIds: BLOCK_IDS as 4 x 2 blocks, crossed by a 4-px pole line."""
    h = w // 2
    ids = np.kron(BLOCK_IDS, np.ones((h // 2, w // 4), np.int64)).astype(np.uint8)
    ids[h // 2 - 2: h // 2 + 2, :] = 17  # pole
    rgb = np.stack([np.tile(np.linspace(0, 255, w), (h, 1))] * 3, -1).astype(np.uint8)
    return rgb, ids


def write_official(root, cid, split, w=512, ids=None):
    city = cid.split("_")[0]
    rgb, default_ids = frame(w)
    img_dir, lab_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(img_dir / f"{cid}_leftImg8bit.png")
    Image.fromarray(default_ids if ids is None else ids).save(lab_dir / f"{cid}_gtFine_labelIds.png")


def official_tree(root):
    write_official(root, "aachen_000000_000019", "train")
    write_official(root, "bochum_000000_000313", "train")
    write_official(root, "frankfurt_000000_000294", "val")
    (root / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)  # no labels: ignored
    Image.fromarray(frame()[0]).save(root / "leftImg8bit" / "test" / "berlin" / "berlin_000000_000019_leftImg8bit.png")
    return root


def colour_frame():
    """A 512x256 pix2pix pair whose right half paints BLOCK_IDS in official colours (squashed to 256²)."""
    colour_of = {lid: c for lid, _, _, c in cs.LABELS}
    lab = np.kron(BLOCK_IDS, np.ones((128, 64), np.int64))
    colour = np.array([[colour_of[v] for v in row] for row in lab], np.uint8)
    photo = np.full((256, 256, 3), 100, np.uint8)
    return np.concatenate([photo, colour], axis=1)


def write_pix2pix(root, n_train=2, n_val=1):
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            Image.fromarray(colour_frame()).save(root / split / f"{i}.jpg", quality=90)
    return root


def test_label_table_is_complete_and_consistent():
    assert sorted(cs.CATEGORY_OF_LABEL) == list(range(-1, 34))
    assert set(cs.CATEGORY_OF_LABEL.values()) == set(range(8))
    assert len(cs.COLOURS) == len(cs.COLOUR_CATEGORIES) == 29  # 35 labels; ids 0-4, 17/18, 26/-1 share colours
    for _lid, _name, cat, colour in cs.LABELS:  # a shared colour never spans two categories
        assert cs.decode_colours(np.array([[colour]], np.uint8))[0, 0] == cat


@pytest.mark.realdata
def test_label_table_equals_official_csv(shared_data):
    rows = list(csv.DictReader((shared_data / "cityscapes_label_to_category.csv").open()))
    official = {int(r["labelId"]): (r["name"], int(r["categoryId"]),
                                    (int(r["color_r"]), int(r["color_g"]), int(r["color_b"]))) for r in rows}
    ours = {lid: (name, cat, colour) for lid, name, cat, colour in cs.LABELS}
    assert ours == official


def test_official_layout(tmp_path, caplog):
    official_tree(tmp_path)
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    data = load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    notes = caplog.messages
    assert data.case_ids == ["aachen_000000_000019", "bochum_000000_000313", "frankfurt_000000_000294"]
    assert data.groups == ["train", "train", "val"]
    assert data.images.shape == (3, 128, 256, 3) and data.labels.shape == (3, 128, 256)
    assert -1.0 <= data.images.min() < -0.95 and 0.95 < data.images.max() <= 1.0
    expected = np.kron(BLOCK_CATS, np.ones((64, 64), np.int64))
    expected[63:65, :] = 3  # the 4-px pole line keeps 2 rows at half scale under plurality
    np.testing.assert_array_equal(data.labels[0], expected)
    native = data.native_label(2)
    assert native.shape == (256, 512) and native[0, 0] == 1 and native[-1, -1] == 0
    np.testing.assert_allclose(data.spacing_mm, 1.0)
    assert data.origin["format"] == "cityscapes_official"
    assert any("2975 train + 500 val" in n for n in notes)


def test_official_errors(tmp_path):
    official_tree(tmp_path)
    with pytest.raises(DataError, match=r"found 2 train \+ 1 val cityscapes cases.*2975 train \+ 500 val"
                                         r".*--allow-partial"):
        load_task("cityscapes", tmp_path, cache_dir=tmp_path / "c")
    bad = frame()[1].copy()
    bad[0, :3] = [34, 200, 255]
    write_official(tmp_path, "bochum_000000_000313", "train", ids=bad)
    with pytest.raises(DataError, match=r"bochum_000000_000313_gtFine_labelIds\.png: "
                                         r"unknown Cityscapes label ids \[34, 200, 255\]"):
        load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    assert not list(tmp_path.glob("c/*.npz"))


def test_official_missing_and_mismatched_files(tmp_path):
    official_tree(tmp_path)
    (tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DataError, match=r"1 Cityscapes images have no gtFine.*aachen_000000_000019"):
        load_task("cityscapes", tmp_path, allow_partial=True)
    write_official(tmp_path, "aachen_000000_000019", "train")
    (tmp_path / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match=r"labelIds files have no leftImg8bit.*frankfurt_000000_000294"):
        load_task("cityscapes", tmp_path, allow_partial=True)
    val_img = tmp_path / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    Image.fromarray(frame()[0][:, :300]).save(val_img)  # not 2:1
    with pytest.raises(DataError, match=r"image is 300x256 pixels, expected a 2:1 Cityscapes frame"):
        load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    write_official(tmp_path, "frankfurt_000000_000294", "val", ids=np.zeros((100, 200), np.uint8))
    with pytest.raises(DataError, match=r"label is 200x100 pixels but its image .* is 512x256"):
        load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")


def test_only_train_frames_is_an_error(tmp_path):
    write_official(tmp_path, "aachen_000000_000019", "train")
    with pytest.raises(DataError, match="needs both"):
        load_task("cityscapes", tmp_path, allow_partial=True)


def test_pix2pix_layout_decodes_known_colours(tmp_path):
    write_pix2pix(tmp_path / "p2p")
    data = load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    assert data.origin["format"] == "cityscapes_pix2pix"
    assert data.case_ids == ["p2p_train_1", "p2p_train_2", "p2p_val_1"] and data.groups == ["train", "train", "val"]
    assert data.images.shape == (3, 128, 256, 3)
    expected = np.kron(BLOCK_CATS, np.ones((64, 64), np.int64))
    assert (data.labels == expected).mean() > 0.97  # JPEG blurs only the block edges
    np.testing.assert_array_equal(data.native_label(2), data.labels[2])
    assert np.allclose(data.images[0, :, :248], 100 / 127.5 - 1, atol=0.02)  # JPEG bleeds at the seam


def test_layout_detection(tmp_path, caplog):
    with pytest.raises(DataError, match="no Cityscapes data found"):
        load_task("cityscapes", tmp_path)
    write_pix2pix(tmp_path / "a")
    write_pix2pix(tmp_path / "b")
    with pytest.raises(DataError, match="several pix2pix Cityscapes folders"):
        load_task("cityscapes", tmp_path, allow_partial=True)
    official_tree(tmp_path / "official")
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    data = load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    assert data.origin["format"] == "cityscapes_official" and "ignoring the pix2pix" in caplog.messages[0]


def test_pix2pix_wrong_size(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(tmp_path / "train" / "1.jpg")
    Image.fromarray(colour_frame()).save(tmp_path / "val" / "1.jpg")
    with pytest.raises(DataError, match=r"1\.jpg: image is 256x256 pixels, expected a pix2pix pair"):
        load_task("cityscapes", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")


# ---- real samples ------------------------------------------------------------------------------------------------

def _true_categories(shared):
    p = shared / "cityscapes_sample/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
    return cs.labels_to_categories(cs.read_label_ids(p), p)


@pytest.mark.realdata
def test_real_pix2pix_val1_agrees_with_official_labels(shared_data):
    truth = _true_categories(shared_data)
    assert truth.shape == (128, 256)
    arr = np.asarray(Image.open(shared_data / "cityscapes_pix2pix_sample/val/1.jpg").convert("RGB"))
    photo, cats = cs.split_pix2pix(arr, "val/1.jpg")
    assert photo.shape == (128, 256, 3)
    assert (cats == truth).mean() >= 0.90


@pytest.mark.realdata
def test_real_official_and_pix2pix_samples_load(shared_data, tmp_path):
    data = load_task("cityscapes", shared_data / "cityscapes_sample", allow_partial=True, cache_dir=tmp_path)
    assert len(data) == 9 and data.groups.count("val") == 1
    assert data.native_label(0).shape == (1024, 2048)  # aachen at full resolution
    val = data.indices(["frankfurt_000000_000294"])[0]
    np.testing.assert_array_equal(data.labels[val], _true_categories(shared_data))  # already 256x128: unchanged
    p2p = load_task("cityscapes", shared_data / "cityscapes_pix2pix_sample", allow_partial=True, cache_dir=tmp_path)
    assert len(p2p) == 60 and p2p.groups.count("val") == 20
    assert (p2p.labels[p2p.indices(["p2p_val_1"])[0]] == _true_categories(shared_data)).mean() >= 0.90
