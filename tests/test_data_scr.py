"""JSRT/SCR loading on files written here (raw .IMG, palette PNG, both SCR layouts) and, when
present, on the real 40-case sample in ../shared/data (marked realdata; conftest's
``shared_data`` fixture skips when it is absent)."""
import logging

import numpy as np
import pytest
from PIL import Image

from gan_seg_aug.data import scr
from gan_seg_aug.data.loaders import DataError, load_task


def phantom(side=2048):
    """Display-convention radiograph (uint8, bright = dense) and the left-lung mask at 1024².

    Body 180, lungs 40 (patient's left lung = image right half), spine 250 between them."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = np.full((side, side), 180, np.uint8)
    right_lung = ((xx - 0.3) / 0.15) ** 2 + ((yy - 0.45) / 0.3) ** 2 < 1
    left_lung = ((xx - 0.7) / 0.15) ** 2 + ((yy - 0.45) / 0.3) ** 2 < 1
    img[right_lung | left_lung] = 40
    img[(np.abs(xx - 0.5) < 0.03) & (yy > 0.1)] = 250
    img[:8, :8] = 0  # make min/max independent of the shapes
    mask = np.asarray(Image.fromarray(left_lung.astype(np.uint8) * 255).resize((1024, 1024), Image.NEAREST))
    return img, mask


def write_image(path, img, kind):
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "img":  # raw JSRT: big-endian 12-bit, higher = darker
        raw = (4095 - img.astype(np.uint16) * 16).astype(">u2")
        raw.tofile(path)
    elif kind == "palette":  # stored indices are inverted, the palette inverts them back
        pim = Image.frombytes("P", img.shape[::-1], (255 - img).tobytes())
        pim.putpalette([v for i in range(256) for v in (255 - i,) * 3])
        pim.save(path, compress_level=1)
    else:
        Image.fromarray(img).save(path, compress_level=1)


def write_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)


@pytest.fixture(scope="module")
def ph():
    return phantom()


def make_tree(root, ph, ids=("JPCLN001", "JPCNN002"), kind="palette", layout="flat"):
    img, mask = ph
    suffix = {"img": ".IMG", "palette": ".IMG.png", "png": ".png"}[kind]
    for k, cid in enumerate(ids):
        write_image(root / "images" / f"{cid}{suffix}", img, kind)
        mdir = root / (f"fold{k % 2 + 1}/masks/left lung" if layout == "scr" else "masks/left_lung")
        write_mask(mdir / f"{cid}.gif", mask)
    return root


def test_raw_img_is_inverted_to_display_convention(tmp_path, ph):
    img, _ = ph
    write_image(tmp_path / "JPCLN001.IMG", img, "img")
    assert (tmp_path / "JPCLN001.IMG").stat().st_size == 8_388_608
    out = scr.read_image(tmp_path / "JPCLN001.IMG")
    np.testing.assert_array_equal(out, img.astype(np.float32) * 16)  # lungs dark, spine bright


def test_palette_png_is_read_through_its_palette(tmp_path, ph):
    img, _ = ph
    write_image(tmp_path / "JPCLN001.IMG.png", img, "palette")
    with Image.open(tmp_path / "JPCLN001.IMG.png") as im:
        assert im.mode == "P" and np.asarray(im)[1024, 1024 + 600] == 255 - 40  # raw index is inverted
    np.testing.assert_array_equal(scr.read_image(tmp_path / "JPCLN001.IMG.png"), img.astype(np.float32))


@pytest.mark.parametrize("kind,layout", [("img", "scr"), ("palette", "flat"), ("png", "scr")])
def test_load_both_layouts_and_formats(tmp_path, ph, kind, layout, caplog):
    img, mask = ph
    make_tree(tmp_path, ph, kind=kind, layout=layout)
    # other structures and converted masks elsewhere must be ignored
    write_mask(tmp_path / "masks" / "heart" / "JPCLN001.gif", mask)
    write_mask(tmp_path / "fold1" / "masks" / "right lung" / "JPCLN001.gif", mask[:, ::-1].copy())
    Image.fromarray(mask).save(tmp_path / "masks" / "heart" / "JPCLN001.png")
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    data = load_task("scr_lung", tmp_path, allow_partial=True, cache_dir=tmp_path / "cache")
    notes = caplog.messages
    assert data.case_ids == ["JPCLN001", "JPCNN002"] and data.source == "real" and data.groups is None
    assert data.images.shape == (2, 256, 256, 1) and data.images.dtype == np.float32
    assert data.images.min() == -1.0 and data.images.max() == 1.0
    assert data.labels.shape == (2, 256, 256) and set(np.unique(data.labels)) == {0, 1}
    np.testing.assert_array_equal(data.labels[0], scr.downsample_mask(mask > 0))
    lung = data.images[0, ..., 0][data.labels[0] == 1]
    body = data.images[0, 200:230, 110:140, 0]
    assert lung.mean() < body.mean() - 0.5  # normal look after any format
    assert np.nonzero(data.labels[0])[1].mean() > 128  # left lung on the image's right
    np.testing.assert_array_equal(data.native_label(1), (mask > 0).astype(np.uint8))
    np.testing.assert_allclose(data.spacing_mm, 0.35)
    assert any("247" in n for n in notes) and not any("inverted" in n for n in notes)


def test_inverted_source_is_reported(tmp_path, ph, caplog):
    img, mask = ph
    make_tree(tmp_path, ph, kind="png")
    write_image(tmp_path / "images" / "JPCLN001.png", 255 - img, "png")  # raw-looking: lungs bright
    write_image(tmp_path / "images" / "JPCNN002.png", 255 - img, "png")
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    load_task("scr_lung", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    assert any("look inverted" in n for n in caplog.messages)


def test_original_img_preferred_over_png_copy(tmp_path, ph, caplog):
    make_tree(tmp_path, ph, ids=("JPCLN001",), kind="palette")
    write_image(tmp_path / "raw" / "JPCLN001.IMG", ph[0], "img")
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    cases = scr.scan(tmp_path)
    assert cases[0].image.name == "JPCLN001.IMG" and "original .IMG" in caplog.messages[0]


def test_duplicate_copies_are_an_error(tmp_path, ph):
    make_tree(tmp_path, ph, ids=("JPCLN001",), kind="png")
    write_image(tmp_path / "copy" / "JPCLN001.png", ph[0], "png")
    with pytest.raises(DataError, match="JPCLN001 is there more than once"):
        scr.scan(tmp_path)


def test_images_without_masks_and_masks_without_images(tmp_path, ph):
    make_tree(tmp_path, ph, ids=("JPCLN001", "JPCNN002"), kind="png")
    (tmp_path / "masks" / "left_lung" / "JPCNN002.gif").unlink()
    with pytest.raises(DataError, match=r"1 JSRT images have no SCR left-lung mask.*JPCNN002"):
        load_task("scr_lung", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    (tmp_path / "images" / "JPCNN002.png").unlink()
    write_mask(tmp_path / "masks" / "left_lung" / "JPCLN154.gif", ph[1])
    with pytest.raises(DataError, match=r"masks have no JSRT image.*JPCLN154"):
        load_task("scr_lung", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match="no JSRT images"):
        load_task("scr_lung", tmp_path)


def test_count_differs_from_paper(tmp_path, ph):
    make_tree(tmp_path, ph, kind="png")
    with pytest.raises(DataError, match=r"found 2 scr_lung cases, expected the paper's 247.*--allow-partial"):
        load_task("scr_lung", tmp_path, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # nothing written before the check


def test_truncated_img(tmp_path, ph):
    make_tree(tmp_path, ph, ids=("JPCLN001",), kind="img")
    p = tmp_path / "images" / "JPCLN001.IMG"
    p.write_bytes(p.read_bytes()[:8_388_600])
    with pytest.raises(DataError, match=r"JPCLN001\.IMG: truncated.*8,388,600 bytes, expected 8,388,608"):
        load_task("scr_lung", tmp_path, allow_partial=True, cache_dir=tmp_path / "c")
    assert not list(tmp_path.glob("c/*.npz"))  # nothing half-written


def test_byte_swapped_img(tmp_path):
    p = tmp_path / "JPCLN001.IMG"
    np.full((2048, 2048), 4000, "<u2").tofile(p)  # little-endian 4000 reads as 40975
    with pytest.raises(DataError, match="byte-swapped"):
        scr.read_image(p)


def test_truncated_png_and_wrong_sizes(tmp_path, ph):
    make_tree(tmp_path, ph, ids=("JPCLN001",), kind="png")
    p = tmp_path / "images" / "JPCLN001.png"
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"JPCLN001\.png: unreadable or truncated image"):
        scr.read_image(p)
    Image.fromarray(np.zeros((1000, 1000), np.uint8)).save(p)
    with pytest.raises(DataError, match=r"JPCLN001\.png: image is 1000x1000 pixels, expected 2048x2048"):
        scr.read_image(p)
    m = tmp_path / "masks" / "left_lung" / "JPCLN001.gif"
    write_mask(m, np.zeros((512, 512), np.uint8))
    with pytest.raises(DataError, match=r"mask is 512x512 pixels, expected 1024x1024"):
        scr.read_mask(m)
    write_mask(m, np.full((1024, 1024), 128, np.uint8))
    with pytest.raises(DataError, match="expected a binary mask"):
        scr.read_mask(m)


# ---- the real sample (40 of the 247 cases), loaded once -------------------------------------------------------

@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    return load_task("scr_lung", shared_data, allow_partial=True, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.realdata
def test_real_sample_needs_allow_partial(real, shared_data):
    assert len(real) == 40 and real.images.shape == (40, 256, 256, 1)
    assert real.origin["image_formats"] == ["PNG"]
    with pytest.raises(DataError, match=r"found 40 scr_lung cases, expected the paper's 247"):
        load_task("scr_lung", shared_data)


@pytest.mark.realdata
def test_real_left_lung_on_image_right(real):
    cols = [np.nonzero(lb)[1].mean() for lb in real.labels]
    assert min(cols) > 128
    native = real.native_label(0)
    assert native.shape == (1024, 1024) and np.nonzero(native)[1].mean() > 512


@pytest.mark.realdata
def test_real_heart_brighter_than_left_lung(real, shared_data):
    brighter = 0
    for i, cid in enumerate(real.case_ids):
        heart = scr.downsample_mask(scr.read_mask(shared_data / "jsrt_scr_sample" / "masks" / "heart" / f"{cid}.gif"))
        img = real.images[i, ..., 0]
        brighter += img[heart == 1].mean() > img[real.labels[i] == 1].mean()
    assert brighter >= 0.9 * len(real)


@pytest.mark.realdata
def test_real_sample_split_keeps_proportions(real, tmp_path):
    from gan_seg_aug.data.loaders import task_split

    split, path = task_split(real, tmp_path)
    assert "subset40" in path.name
    tests = sorted(c for f in split["folds"] for c in f["test"])
    assert tests == sorted(real.case_ids)
    assert all(len(f["val"]) == 5 for f in split["folds"])  # 30/247 of 40
