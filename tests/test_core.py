"""Config, mask encoding, splits and atomic outputs: the contracts everything else builds on."""
import json

import numpy as np
import pytest

from gan_seg_aug import config as C
from gan_seg_aug.artifacts import atomic_write_json, provenance, read_json
from gan_seg_aug.data.base import TaskData
from gan_seg_aug.data.splits import fold_of, load_or_make_split, make_split
from gan_seg_aug.data.mask_encoding import decode_mask, encode_mask


def test_paper_defaults_are_the_thesis_values():
    g = C.gan_config("scr_lung", "paper")
    assert (g.gp_lambda, g.learning_rate, g.beta_1, g.beta_2, g.n_critic) == (10.0, 1e-4, 0.5, 0.9, 5)
    assert (g.iterations, g.batch_size, g.height, g.width, g.latent_dim) == (10_000, 16, 256, 256, 128)
    assert C.gan_config("cityscapes", "paper").batch_size == 8
    u = C.unet_config("scr_lung", "paper", "8-8")
    assert (u.min_iterations, u.patience, u.batch_size, u.network_id) == (3000, 3000, 16, "8-8-NoAug")
    assert C.unet_config("cityscapes", "paper", "4-4", augment=True).network_id == "4-4-Aug"


def test_cpu_cityscapes_gan_is_the_measured_one_and_scr_keeps_its_own():
    # decisions.md "The Cityscapes GAN at the cpu profile": width/8 for 2,000 iterations did not train
    city, scr = C.gan_config("cityscapes", "cpu"), C.gan_config("scr_lung", "cpu")
    assert (city.height, city.width, city.gan_width_div, city.iterations) == (128, 256, 4, 10_000)
    assert (scr.gan_width_div, scr.iterations) == (4, 2_000)
    assert C.gan_config("cityscapes", "cpu", iterations=50).iterations == 50  # an explicit override still wins


@pytest.mark.parametrize("bad", ["8", "8-8-8", "a-b", "-1-2", "0-0", ""])
def test_invalid_mix_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="--mix"):
        C.parse_mix(bad)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task"):
        C.task_spec("lungs")
    with pytest.raises(ValueError, match="--profile"):
        C.get_profile("fast")
    with pytest.raises(ValueError, match="critic norm"):
        C.gan_config("scr_lung", "smoke", critic_norm="spectral")


def test_every_profile_scale_divides_into_the_networks_stages():
    for prof in C.PROFILE_TABLE.values():
        for task, s in prof.scale.items():
            assert s.height % 16 == 0 and s.width % 16 == 0, (prof.name, task)
            if task == "cityscapes":
                assert s.width == 2 * s.height


@pytest.mark.parametrize("k", [2, 8])
def test_mask_encoding_round_trips_and_quantises(k):
    labels = np.arange(k, dtype=np.uint8)
    enc = encode_mask(labels, k)
    assert enc.min() == -1.0 and enc.max() == 1.0
    assert decode_mask(enc, k).tolist() == labels.tolist()
    noisy = enc + np.float32(0.9 / (k - 1)) * np.sign(np.random.default_rng(0).standard_normal(k)).astype(np.float32)
    assert decode_mask(np.clip(noisy, -1, 1), k).tolist() == labels.tolist()  # within half a level: same class


def test_scr_split_matches_paper_sizes_and_covers_every_case_once():
    ids = [f"JPCLN{i:03d}" for i in range(1, 155)] + [f"JPCNN{i:03d}" for i in range(1, 94)]
    s = make_split("scr_lung", ids)
    tests = [c for f in s["folds"] for c in f["test"]]
    assert sorted(tests) == sorted(ids)
    for f in s["folds"]:
        assert len(f["val"]) == 30 and len(f["test"]) in (82, 83)
        assert len(f["train"]) + len(f["val"]) + len(f["test"]) == 247
        assert not (set(f["train"]) & set(f["val"])) and not (set(f["train"]) & set(f["test"]))
    assert make_split("scr_lung", list(reversed(ids))) == s  # input order does not matter


def test_cityscapes_split_matches_paper_sizes():
    ids = [f"t{i}" for i in range(2975)] + [f"v{i}" for i in range(500)]
    groups = ["train"] * 2975 + ["val"] * 500
    (f,) = make_split("cityscapes", ids, groups)["folds"]
    assert (len(f["train"]), len(f["val"]), len(f["test"])) == (2575, 400, 500)
    assert all(c.startswith("v") for c in f["test"]) and all(c.startswith("t") for c in f["val"])


def test_partial_split_keeps_proportions():
    s = make_split("scr_lung", [f"C{i}" for i in range(40)])
    assert [len(f["test"]) for f in s["folds"]] == [14, 13, 13]
    assert all(len(f["val"]) == 5 for f in s["folds"])


def test_saved_split_is_reused_and_mismatch_refused(tmp_path):
    ids = [f"C{i:03d}" for i in range(30)]
    s1, p1 = load_or_make_split("scr_lung", ids, source="real", full=False, split_dir=tmp_path)
    s2, p2 = load_or_make_split("scr_lung", ids, source="real", full=False, split_dir=tmp_path)
    assert p1 == p2 and s1 == s2 and json.loads(p1.read_text())["folds"] == s1["folds"]
    p1.write_text(p1.read_text().replace(s1["case_ids_sha256_16"], "0" * 16))
    with pytest.raises(ValueError, match="other cases"):
        load_or_make_split("scr_lung", ids, source="real", full=False, split_dir=tmp_path)
    with pytest.raises(ValueError, match="--fold 4"):
        fold_of(s1, 4)


def test_atomic_json_leaves_no_partial_file(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic_write_json(path, {"a": np.float32(1.5), "b": np.arange(3)})
    assert read_json(path) == {"a": 1.5, "b": [0, 1, 2]}

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": Boom()})
    assert read_json(path) == {"a": 1.5, "b": [0, 1, 2]}  # old content intact
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp files left
    prov = provenance(profile="smoke")
    assert prov["profile"] == "smoke" and "git_commit" in prov and "date" in prov
    assert prov["cpu"]  # the machine kind: runs are bit-identical within one only



def test_git_commit_is_dirty_for_code_changes_not_for_written_results(tmp_path, monkeypatch):
    import shutil
    import subprocess

    from gan_seg_aug import artifacts
    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "table.csv").write_text("a\n1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    monkeypatch.setattr(artifacts, "_REPO_ROOT", tmp_path)
    clean = artifacts.git_commit()
    assert len(clean) == 40 and "+dirty" not in clean
    (tmp_path / "results" / "table.csv").write_text("a\n2\n")  # the sweep writing its tables
    assert artifacts.git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert artifacts.git_commit() == clean + "+dirty"

def _toy_taskdata(n=10, groups=None):
    rng = np.random.default_rng(0)
    lab = (rng.random((n, 8, 8)) > 0.5).astype(np.uint8)
    return TaskData("scr_lung", "synthetic", [f"c{i}" for i in range(n)],
                    rng.uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32), lab, np.ones((n, 2)),
                    lambda i: lab[i], groups=groups)


def test_taskdata_resize_and_limit():
    d = _toy_taskdata()
    r = d.resized(4, 4)
    assert r.images.shape == (10, 4, 4, 1) and r.labels.shape == (10, 4, 4)
    assert set(np.unique(r.labels)) <= {0, 1}
    assert r.native_label(3).shape == (8, 8)  # native ground truth untouched
    g = ["train"] * 7 + ["val"] * 3
    lim = _toy_taskdata(groups=g).limited(5)
    assert len(lim) == 5 and set(lim.groups) == {"train", "val"}
    assert np.array_equal(lim.native_label(len(lim) - 1), d.native_label(d.indices([lim.case_ids[-1]])[0]))
    with pytest.raises(KeyError, match="not in this dataset"):
        d.indices(["nope"])


def test_profile_downsampling_of_labels_is_centre_aligned():
    """TaskData.resized (cpu / smoke profiles) uses the loaders' area vote: a disc keeps its centroid,
    where a nearest-neighbour pick would move it by half an output pixel."""
    import cv2

    from gan_seg_aug.data.base import TaskData, resize_labels

    yy, xx = np.mgrid[:256, :256]
    disc = (((yy - 101.5) ** 2 + (xx - 140.5) ** 2) < 60 ** 2).astype(np.uint8)
    data = TaskData(task="scr_lung", source="synthetic", case_ids=["a"], images=np.zeros((1, 256, 256, 1), np.float32),
                    labels=disc[None], spacing_mm=np.ones((1, 2)), native_label_fn=lambda i: disc)
    small = data.resized(128, 128).labels[0]
    np.testing.assert_array_equal(small, resize_labels(disc, 2, 128, 128))

    def centroid(m, scale):
        r, c = np.nonzero(m)
        return np.array([(r.mean() + 0.5) * scale - 0.5, (c.mean() + 0.5) * scale - 0.5])

    assert np.abs(centroid(small, 2) - centroid(disc, 1)).max() < 0.1
    nearest = cv2.resize(disc, (128, 128), interpolation=cv2.INTER_NEAREST)
    assert np.abs(centroid(nearest, 2) - centroid(disc, 1)).max() > 0.4  # the rule this replaced
