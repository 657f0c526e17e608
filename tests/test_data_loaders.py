"""The entry point (load_task / task_split), the preprocessing cache and the describe command."""
import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from gan_seg_aug.data import cache
from gan_seg_aug.data import scr
from gan_seg_aug.data.__main__ import main
from gan_seg_aug.data.base import TaskData
from gan_seg_aug.data.describe import summarise
from gan_seg_aug.data.loaders import DataError, load_task, task_split


def write_scr(root, ids=("JPCLN001", "JPCLN002", "JPCNN001")):
    """Minimal JSRT/SCR tree: 2048² greyscale PNGs (lung dark on the image right) + 1024² GIF masks."""
    img = np.full((2048, 2048), 200, np.uint8)
    img[400:1600, 1200:1700] = 50
    mask = np.zeros((1024, 1024), np.uint8)
    mask[200:800, 600:850] = 255
    (root / "img").mkdir(parents=True)
    (root / "masks" / "left_lung").mkdir(parents=True)
    for cid in ids:
        Image.fromarray(img).save(root / "img" / f"{cid}.png", compress_level=1)
        Image.fromarray(mask).save(root / "masks" / "left_lung" / f"{cid}.gif")
    return root


def write_city(root):
    """Two train + one val official-layout frames at 512x256."""
    rng = np.random.default_rng(0)
    for cid, split in (("aachen_000000_000019", "train"), ("aachen_000001_000019", "train"),
                       ("frankfurt_000000_000294", "val")):
        city = cid.split("_")[0]
        for sub in ("leftImg8bit", "gtFine"):
            (root / sub / split / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)).save(
            root / "leftImg8bit" / split / city / f"{cid}_leftImg8bit.png")
        ids = np.full((256, 512), 7, np.uint8)
        ids[:100] = 23
        Image.fromarray(ids).save(root / "gtFine" / split / city / f"{cid}_gtFine_labelIds.png")
    return root


@pytest.fixture
def scr_tree(tmp_path):
    return write_scr(tmp_path / "scr")


@pytest.fixture
def counted_decode(monkeypatch):
    calls = []
    real = scr.read_image

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(scr, "read_image", counting)
    return calls


# ---- bad input ---------------------------------------------------------------------------------------------------

def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match=f"--data-dir {tmp_path / 'nope'}: directory not found"):
        load_task("scr_lung", tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        load_task("scr_lung", tmp_path / "f")
    with pytest.raises(DataError, match="--task 'lungs'"):
        load_task("lungs", tmp_path)
    with pytest.raises(DataError, match="--max-cases -1"):
        load_task("scr_lung", tmp_path, max_cases=-1)


# ---- cache -------------------------------------------------------------------------------------------------------

def test_second_load_hits_cache_and_decodes_nothing(scr_tree, tmp_path, counted_decode):
    c = tmp_path / "cache"
    first = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    assert len(counted_decode) == 3 and not first.origin["cache_hit"]
    assert len(list(c.glob("scr_lung-*.npz"))) == 1
    second = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    assert len(counted_decode) == 3 and second.origin["cache_hit"]  # no decode on a hit
    np.testing.assert_array_equal(first.images, second.images)  # bit-identical: same float16 rounding
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.case_ids == second.case_ids
    np.testing.assert_array_equal(second.native_label(0), first.native_label(0))


def test_changed_source_invalidates_cache(scr_tree, tmp_path, counted_decode):
    c = tmp_path / "cache"
    load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    gif = scr_tree / "masks" / "left_lung" / "JPCLN002.gif"
    st = gif.stat()
    os.utime(gif, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touch
    again = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    assert len(counted_decode) == 6 and not again.origin["cache_hit"]
    m = np.zeros((1024, 1024), np.uint8)
    Image.fromarray(m).save(gif)  # new content: the label must follow
    changed = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    assert len(counted_decode) == 9 and changed.labels[1].sum() == 0 and changed.labels[0].sum() > 0


def test_corrupt_cache_is_rebuilt_with_a_warning(scr_tree, tmp_path, counted_decode, caplog):
    c = tmp_path / "cache"
    first = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    (path,) = c.glob("*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    rebuilt = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c)
    # the console shows "warning: cache file ...": the prefix comes from the level (log_setup)
    assert any(r.levelno == logging.WARNING and r.getMessage().startswith("cache file")
               and "rebuilding" in r.getMessage() for r in caplog.records)
    assert len(counted_decode) == 6
    np.testing.assert_array_equal(first.images, rebuilt.images)
    assert load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=c).origin["cache_hit"]


def test_cache_key_covers_params_and_code(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    k = cache.cache_key("scr_lung", "f", [src], {"side": 256})
    assert k == cache.cache_key("scr_lung", "f", [src], {"side": 256})
    assert k != cache.cache_key("scr_lung", "f", [src], {"side": 128})
    assert k != cache.cache_key("cityscapes", "f", [src], {"side": 256})
    code = tmp_path / "code.py"
    code.write_text("v1")
    k1 = cache.cache_key("scr_lung", "f", [src], {}, code_files=[code])
    code.write_text("v2")
    assert k1 != cache.cache_key("scr_lung", "f", [src], {}, code_files=[code])


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "x"))
    assert cache.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv(cache.ENV_VAR)
    assert cache.default_cache_dir().parts[-2:] == (".cache", "gan_seg_aug")


def test_max_cases_limits_real_data(scr_tree, tmp_path):
    d = load_task("scr_lung", scr_tree, allow_partial=True, cache_dir=tmp_path / "c", max_cases=2)
    assert d.case_ids == ["JPCLN001", "JPCLN002"] and d.native_label(1).shape == (1024, 1024)


# ---- synthetic default -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task,shape", [("scr_lung", (256, 256, 1)), ("cityscapes", (128, 256, 3))])
def test_no_data_dir_gives_synthetic_with_notice(task, shape, caplog):
    caplog.set_level(logging.INFO, logger="gan_seg_aug")
    d = load_task(task, max_cases=12)
    notes = caplog.messages
    assert d.source == "synthetic" and len(d) == 12 and d.images.shape[1:] == shape
    assert len(notes) == 1 and "SYNTHETIC" in notes[0] and "NOT comparable" in notes[0]
    split, path = task_split(d)
    assert "synthetic" in path.name and "subset12" in path.name
    assert sorted(c for f in split["folds"] for c in f["test"]) == sorted(
        d.case_ids if task == "scr_lung" else [c for c, g in zip(d.case_ids, d.groups) if g == "val"])


def test_synthetic_and_subset_splits_go_to_the_scratch_dir_not_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_SEG_AUG_SPLIT_DIR", raising=False)
    _, path = task_split(load_task("scr_lung", max_cases=12), scratch_dir=tmp_path / "runs" / "splits")
    assert path.parent == tmp_path / "runs" / "splits" and path.exists()


# ---- splits through task_split -----------------------------------------------------------------------------------

def _fake(task, ids, groups=None, source="real"):
    n = len(ids)
    lab = np.zeros((n, 1, 1), np.uint8)
    return TaskData(task, source, ids, np.zeros((n, 1, 1, 1), np.float32), lab, np.ones((n, 2)),
                    lambda i: lab[i], groups=groups)


def test_task_split_paper_sizes_and_file_names(tmp_path):
    ids = [f"JPCLN{i:03d}" for i in range(1, 155)] + [f"JPCNN{i:03d}" for i in range(1, 94)]
    split, path = task_split(_fake("scr_lung", ids), tmp_path)
    assert path.name == "scr_lung.json"
    assert [(len(f["train"]), len(f["val"]), len(f["test"])) for f in split["folds"]] == \
        [(134, 30, 83), (135, 30, 82), (135, 30, 82)]
    assert sorted(c for f in split["folds"] for c in f["test"]) == sorted(ids)  # every case tested once
    assert task_split(_fake("scr_lung", ids), tmp_path) == (split, path)  # reused, not remade
    cids = [f"t{i}" for i in range(2975)] + [f"v{i}" for i in range(500)]
    city, cpath = task_split(_fake("cityscapes", cids, ["train"] * 2975 + ["val"] * 500), tmp_path)
    (f,) = city["folds"]
    assert cpath.name == "cityscapes.json" and (len(f["train"]), len(f["val"]), len(f["test"])) == (2575, 400, 500)
    assert sorted(f["train"] + f["val"] + f["test"]) == sorted(cids)
    _, ppath = task_split(_fake("scr_lung", ids[:40]), tmp_path)
    assert ppath.name.startswith("scr_lung_subset40_")


# ---- describe ----------------------------------------------------------------------------------------------------

def test_describe_json_is_one_object_with_the_split(tmp_path, capsys):
    root = write_city(tmp_path / "city")
    out = tmp_path / "sheet.png"
    rc = main(["describe", "--task", "cityscapes", "--data-dir", str(root), "--json", "--allow-partial",
               "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--split-dir", str(tmp_path / "s")])
    captured = capsys.readouterr()
    assert rc == 0
    d = json.loads(captured.out)  # stdout holds exactly one JSON document
    assert d["n_cases"] == 3 and d["source"] == "real" and d["groups"] == {"train": 2, "val": 1}
    (fold,) = d["split"]["folds"]
    assert fold["test"] == ["frankfurt_000000_000294"] and sorted(fold["train"] + fold["val"]) == [
        "aachen_000000_000019", "aachen_000001_000019"]
    assert d["split"]["sizes"] == [{"fold": 1, "train": 1, "val": 1, "test": 1}]
    assert d["intensity"]["min"] >= -1 and d["intensity"]["max"] <= 1
    assert abs(d["masks"]["class_fraction"]["sky"] - 100 / 256) < 0.01
    assert "--allow-partial" in captured.err  # notices go to stderr in --json mode
    with Image.open(out) as im:
        assert im.size[0] > 0 and "git_commit" in json.loads(im.text["gan_seg_aug"])
    assert d["contact_sheet"] == str(out) and "git_commit" in d["provenance"]


def test_describe_text_and_errors(scr_tree, tmp_path, capsys):
    args = ["describe", "--task", "scr_lung", "--allow-partial", "--cache-dir", str(tmp_path / "c"),
            "--split-dir", str(tmp_path / "s")]
    assert main(args + ["--data-dir", str(scr_tree)]) == 2  # 3 cases cannot make 3 folds
    assert "at least 9 cases, found 3" in capsys.readouterr().err
    nine = write_scr(tmp_path / "nine", ids=[f"JPCLN{i:03d}" for i in range(1, 10)])
    assert main(args + ["--data-dir", str(nine)]) == 0
    out = capsys.readouterr().out
    assert "9 cases" in out and "right 9" in out and "fold 3: train 5, val 1, test 3" in out
    assert main(["describe", "--task", "scr_lung", "--data-dir", str(scr_tree)]) == 2
    assert "expected the paper's 247" in capsys.readouterr().err
    assert main(["describe", "--task", "scr_lung", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "directory not found" in capsys.readouterr().err


def test_describe_works_on_synthetic(tmp_path, capsys):
    assert main(["describe", "--task", "scr_lung", "--json", "--max-cases", "12", "--split-dir", str(tmp_path),
                 "--out", str(tmp_path / "s.png")]) == 0
    captured = capsys.readouterr()
    d = json.loads(captured.out)
    assert d["source"] == "synthetic" and d["n_cases"] == 12 and len(d["split"]["folds"]) == 3
    assert "SYNTHETIC" in captured.err and (tmp_path / "s.png").stat().st_size > 0


def test_summarise_centroid_side_and_fractions():
    lab = np.zeros((3, 4, 4), np.uint8)
    lab[0, :, 3] = 1  # right
    lab[1, :, 0] = 1  # left
    ids = ["A", "B", "C"]
    d = TaskData("scr_lung", "synthetic", ids, np.zeros((3, 4, 4, 1), np.float32), lab, np.ones((3, 2)),
                 lambda i: lab[i])
    s = summarise(d, {"seed": 0, "folds": [{"fold": 1, "train": ["A"], "val": ["B"], "test": ["C"]}]})
    assert s["masks"]["centroid_side"] == {"left": 1, "right": 1, "none": 1}
    assert s["masks"]["class_fraction"]["left_lung"] == pytest.approx(8 / 48)
    assert s["masks"]["foreground_fraction"]["max"] == pytest.approx(0.25)
