"""Your own data: a folder of images and masks becomes a task (gan_seg_aug/data/folder.py) and runs the
paper's pipeline with experiments/own_data.py.  Folders come from tests/own_data_folder.py, the generator
the worked example of docs/own_data.md uses too."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import own_data_folder
from gan_seg_aug import config as C
from gan_seg_aug.cli.flags import own_data_settings, run_command
from gan_seg_aug.data import folder
from gan_seg_aug.data.loaders import DataError, load_task, task_split

REPO = Path(__file__).resolve().parents[1]
COMMAND = REPO / "experiments" / "own_data.py"


def _own_data_parser():
    import importlib.util

    spec = importlib.util.spec_from_file_location("own_data_command", COMMAND)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    return {kind: own_data_folder.make(root / kind, kind) for kind in own_data_folder.KINDS}


# ---- the folder becomes a task

def test_a_binary_folder_is_described_by_its_images_and_masks(folders):
    spec = folder.describe(folders["binary"] / "images", folders["binary"] / "masks")
    assert (spec.name, spec.image_channels, spec.n_classes, spec.metric) == ("own_binary", 1, 2, "dice")
    assert (spec.family, spec.height, spec.width) == ("scr_lung", 64, 64)  # no mask is enlarged: 64, not 256
    assert (spec.distance_unit, spec.spacing_mm, spec.largest_component) == ("px", None, False)
    assert (spec.gan_batch, spec.unet_batch, spec.default_mix) == (16, 16, "8-8")  # SCR's (Tables 4.1, II)
    with_spacing = folder.describe(folders["binary"] / "images", folders["binary"] / "masks", spacing_mm=0.35,
                                   side=256, name="lungs2", largest_component=True)
    assert (with_spacing.distance_unit, with_spacing.height, with_spacing.name) == ("mm", 256, "lungs2")


def test_a_1_to_2_rgb_folder_uses_the_cityscapes_networks_and_a_colour_table_names_the_classes(folders):
    labels = folder.describe(folders["classes"] / "images", folders["classes"] / "masks")
    assert (labels.family, labels.height, labels.width, labels.image_channels) == ("cityscapes", 32, 64, 3)
    assert (labels.n_classes, labels.metric, labels.class_names) == (3, "miou", ("class0", "class1", "class2"))
    colours = folder.describe(folders["colours"] / "images", folders["colours"] / "masks",
                              colours=folders["colours"] / "colours.csv")
    assert colours.class_names == ("background", "bar", "disc") and colours.colours[1] == (220, 20, 60)
    # the same scenes as labels and as colours (JPEG vs TIFF images): the same label maps
    a = folder.load(labels, folders["classes"] / "images", folders["classes"] / "masks")
    b = folder.load(colours, folders["colours"] / "images", folders["colours"] / "masks")
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.native_label(3), b.native_label(3))
    assert a.images.shape == (30, 32, 64, 3) and a.images.min() == -1.0 and a.images.max() == 1.0


def test_the_masks_are_the_native_ground_truth_at_their_spacing(folders, tmp_path):
    spec = folder.describe(folders["binary"] / "images", folders["binary"] / "masks", spacing_mm=0.35)
    data = load_task(spec, folders["binary"] / "images", masks_dir=folders["binary"] / "masks")
    assert data.source == "folder" and data.task == spec and data.case_ids[0] == "Case_000"
    with Image.open(data.origin["images_dir"] + "/Case_000.png") as im:
        assert im.size == (128, 128)  # every third image is twice its mask's size, as JSRT vs SCR
    assert data.native_label(0).shape == (64, 64) and set(np.unique(data.native_label(0))) == {0, 1}
    assert np.all(data.spacing_mm == 0.35) and data.images.shape == (32, 64, 64, 1)
    split, path = task_split(data, split_dir=tmp_path)
    assert path.name == "own_binary_folder.json" and split["task"] == "own_binary"
    sizes = [(len(f["train"]), len(f["val"]), len(f["test"])) for f in split["folds"]]
    assert sizes == [(17, 4, 11), (17, 4, 11), (18, 4, 10)]  # SCR's procedure (paper §V-A) on 32 cases
    assert sorted(sum((f["test"] for f in split["folds"]), [])) == sorted(data.case_ids)
    assert task_split(data.limited(20), split_dir=tmp_path)[1].name.startswith("own_binary_folder_subset20_")


def test_an_own_task_travels_as_its_spec_and_reads_back_from_json(folders):
    spec = folder.describe(folders["classes"] / "images", folders["classes"] / "masks")
    record = json.loads(json.dumps(dataclasses.asdict(spec)))
    assert C.task_spec(record) == spec and C.task_name(spec) == "own_classes" and str(spec) == "own_classes"
    gan = C.gan_config(spec, "smoke")
    assert C.GANConfig(**json.loads(json.dumps(C.to_dict(gan)))) == gan  # config.json holds the whole spec
    assert (gan.height, gan.width, gan.batch_size) == (16, 32, 8)  # 32 rows x 32/128 (smoke), floor 16
    unet = C.unet_config(spec, "cpu")
    assert (unet.height, unet.width, unet.unet_width_div, unet.network_id) == (32, 64, 8, "4-4-NoAug")  # cpu: full side
    assert C.task_fields(spec)["task"] == "own_classes" and C.task_fields("scr_lung") == {"task": "scr_lung"}


def test_the_paper_tasks_keep_their_names_and_scales():
    for task in C.TASKS:
        assert C.normalise_task(C.task_spec(task)) == task  # a paper spec becomes its name again
        for profile in C.PROFILES:
            assert C.net_scale(task, profile) == C.PROFILE_TABLE[profile].scale[task]
    with pytest.raises(ValueError, match="paper's task"):
        C.normalise_task(dataclasses.replace(C.SCR_LUNG, n_classes=3))


# ---- bad folders: one line naming the file

def _drop_a_mask(root):
    (root / "masks" / "case_004_mask.png").unlink()
    return "Case_004.png"


def _a_mask_without_image(root):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "masks" / "stray_mask.png")
    return "stray_mask.png"


def _a_grey_value_in_binary_masks(root):
    m = np.array(Image.open(root / "masks" / "case_002_mask.png"))
    m[0, 0] = 128
    Image.fromarray(m).save(root / "masks" / "case_002_mask.png")
    return "case_002_mask.png"


def _a_label_above_k(root):
    for p in (root / "masks").iterdir():  # label masks 0 / 1, then one 7 with --classes 3
        m = (np.array(Image.open(p)) > 0).astype(np.uint8)
        m[0, 0] = 7 if p.name == "case_006_mask.png" else m[0, 0]
        Image.fromarray(m).save(p)
    return "case_006_mask.png"


def _an_image_of_another_shape(root):
    Image.fromarray(np.full((16, 32), 90, np.uint8)).save(root / "images" / "Case_001.png")
    return "Case_001.png"


def _a_mask_of_another_shape(root):
    Image.fromarray(np.zeros((16, 8), np.uint8)).save(root / "masks" / "case_001_mask.png")
    return "case_001_mask.png"


def _a_jpeg_mask(root):
    Image.open(root / "masks" / "case_003_mask.png").convert("L").save(root / "masks" / "case_003_mask.jpg")
    (root / "masks" / "case_003_mask.png").unlink()
    return "case_003_mask.jpg"


def _two_images_with_one_stem(root):
    Image.open(root / "images" / "Case_005.png").save(root / "images" / "case_005.tif")
    return "case_005"


def _an_empty_folder(root):
    for p in (root / "images").iterdir():
        p.unlink()
    return str(root / "images")


def _a_missing_folder(root):
    (root / "masks").rename(root / "labels")
    return str(root / "masks")


BAD_FOLDERS = {
    "unmatched image": (_drop_a_mask, [], "no mask in"),
    "unmatched mask": (_a_mask_without_image, [], "no image in"),
    "unexpected binary value": (_a_grey_value_in_binary_masks, [], "unexpected in a folder of binary"),
    "label above --classes": (_a_label_above_k, ["--classes", "3"], "outside the class labels 0..2"),
    "mixed image shapes": (_an_image_of_another_shape, [], "not in aspect ratio"),
    "mask shape differs": (_a_mask_of_another_shape, [], "not another aspect ratio"),
    "jpeg mask": (_a_jpeg_mask, [], "JPEG is lossy"),
    "duplicate stem": (_two_images_with_one_stem, [], "the same name as"),
    "empty folder": (_an_empty_folder, [], "no image files"),
    "missing folder": (_a_missing_folder, [], "directory not found"),
}


@pytest.fixture
def console():
    """The command configures the package's console logging in-process; undone afterwards."""
    from gan_seg_aug.cli.log_setup import reset

    yield
    reset()


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_a_bad_folder_is_one_line_naming_the_file(case, tmp_path, capsys, console):
    root = own_data_folder.binary(tmp_path / "data", n=10, side=16)
    breaks, flags, expected = BAD_FOLDERS[case]
    culprit = breaks(root)
    argv = ["--images", str(root / "images"), "--masks", str(root / "masks"), "--profile", "smoke", *flags]
    assert run_command(_own_data_parser(), own_data_settings, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and culprit in err[0] and expected in err[0], err


def test_a_colour_outside_the_table_names_the_mask(folders, tmp_path):
    root = own_data_folder.classes(tmp_path / "data", n=10, colour_masks=True)
    m = np.array(Image.open(root / "masks" / "scene07.png"))
    m[0, 0] = (1, 2, 3)
    Image.fromarray(m).save(root / "masks" / "scene07.png")
    with pytest.raises(DataError, match=r"scene07\.png: mask colours \[\(1, 2, 3\)\] are not in the --colours"):
        folder.describe(root / "images", root / "masks", colours=root / "colours.csv")


def test_the_command_answers_help_without_tensorflow_and_bad_flags_in_one_line():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = (f"import runpy, sys\nsys.argv = ['own_data.py', '--help']\ntry:\n"
            f"    runpy.run_path({str(COMMAND)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"assert 'tensorflow' not in sys.modules, 'imported TensorFlow'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "--images" in proc.stdout and "--spacing-mm" in proc.stdout, proc.stderr
    bad = [(["--masks", "m"], "--images"), (["--images", "i", "--masks", "m", "--aspect", "3:4"], "--aspect"),
           (["--images", "i", "--masks", "m", "--side", "x"], "--side"),
           (["--images", "i", "--masks", "m", "--mix", "8x8"], "--mix")]
    for flags, text in bad:
        proc = subprocess.run([sys.executable, str(COMMAND), *flags], capture_output=True, text=True, env=env,
                              timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and text in proc.stderr, flags


def test_the_folder_generator_is_a_command_too(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "own_data_folder.py"), str(tmp_path / "d"),
                           "--kind", "colours", "--n", "9"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "d" / "masks").glob("*.png"))) == 9 and (tmp_path / "d" / "colours.csv").exists()


# ---- end to end, smoke profile

def _run(args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "GAN_SEG_AUG_SPLIT_DIR"}  # splits go to <runs-dir>/splits
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_a_binary_folder_runs_end_to_end_and_is_reused(folders, tmp_path):
    runs, data = tmp_path / "runs", folders["binary"]
    argv = [COMMAND, "--images", data / "images", "--masks", data / "masks", "--profile", "smoke",
            "--runs-dir", runs]
    log = _run(argv)
    fold = runs / "own_binary" / "smoke" / "folder" / "fold1"
    summary = json.loads((fold / "8-8-NoAug_critic-layer_bn-moving" / "summary.json").read_text())
    assert summary["task"] == "own_binary" and summary["task_spec"]["family"] == "scr_lung"
    assert summary["dataset"] == "folder" and summary["distance_unit"] == "px" and summary["split_file"] in log
    assert 0.0 <= summary["test"]["dice_mean"] <= 1.0 and summary["test"]["hausdorff_px_mean"] > 0
    assert summary["masks_dir"] == str((data / "masks").resolve()) and summary["gan_quality"]
    assert (runs / "splits" / "own_binary_folder.json").exists()
    header = (fold / "8-8-NoAug_critic-layer_bn-moving" / "metrics_per_image.csv").read_text().splitlines()[0]
    assert header.startswith("case_id,dice,hausdorff_px,hd95_px,assd_px")
    gan = fold / "gan_critic-layer"
    assert json.loads((gan / "generator.json").read_text())["task"] == "own_binary"
    assert (gan / "generator.keras").exists() and (fold / "16-0-NoAug" / "summary.json").exists()
    assert "already finished" in _run(argv)  # the recorded spec reads back: reused, not refused
    _run([REPO / "experiments" / "sample_pairs.py", "--gan-dir", gan, "--n", "3", "--out", tmp_path / "pairs"])
    manifest = json.loads((tmp_path / "pairs" / "manifest.json").read_text())
    assert manifest["task"] == "own_binary" and manifest["class_names"] == ["background", "foreground"]


@pytest.mark.slow
def test_a_three_class_rgb_folder_runs_end_to_end_with_miou(tmp_path):
    data = own_data_folder.classes(tmp_path / "scenes")  # 30 pairs: 4 validation cases for the quality report
    runs = tmp_path / "runs"
    _run([COMMAND, "--images", data / "images", "--masks", data / "masks", "--profile", "smoke", "--runs-dir", runs,
          "--aug", "--fold", "2"])
    summary = json.loads(next(runs.rglob("4-4-Aug_critic-layer_bn-moving/summary.json")).read_text())
    assert summary["task"] == "own_scenes" and summary["fold"] == 2 and summary["resolution"] == [16, 32]
    assert set(summary["test"]["iou_per_category"]) == {"class0", "class1", "class2"}
    assert 0.0 <= summary["test"]["miou3"] <= 1.0 and "distance_unit" not in summary and summary["gan_quality"]
