"""The paper's row-vs-row comparisons from runs on disk (gan_seg_aug.reporting.run_statistics, experiments/compare.py).

Every run here is fabricated in tmp_path: a summary.json and a per-image CSV in the layout of the
commands, with per-image values built to give a known answer.  Nothing is trained.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan_seg_aug.config import CITYSCAPES_CATEGORIES
from gan_seg_aug.evaluation.paired_stats import VERDICTS
from gan_seg_aug.evaluation.segmentation import confusion_columns
from gan_seg_aug.reporting import run_statistics as S

REPO = Path(__file__).resolve().parents[1]
N_BOOT = 300
PRESET = {"scr_lung": dict(shift_std=0.05, scale_std=0.05, translate_std=10.0, elastic_std=10.0, flip=False),
          "cityscapes": dict(shift_std=0.0, scale_std=0.0, translate_std=0.0, elastic_std=0.0, flip=True)}


def write_run(root, network_id, fold, seed, per_image, *, task="scr_lung", profile="cpu", dataset="real",
              critic="layer", bn="moving", file="metrics_per_image.csv", date="2026-12-01T00:00:00+00:00",
              train_cases=None):
    """A finished U-Net run directory named as experiment.run_name names it."""
    r, g, aug = network_id.split("-")
    gen = int(g) > 0
    name = network_id + (f"_critic-{critic}_bn-{bn}" if gen else "") + (f"_seed{seed}" if seed else "") + (
        f"_train{train_cases}" if train_cases else "")
    run_dir = Path(root) / task / profile / dataset / f"fold{fold}" / name
    run_dir.mkdir(parents=True)
    summary = {"task": task, "fold": fold, "network_id": network_id, "run_name": name, "n_real": int(r),
               "n_generated": int(g), "augment": aug == "Aug", "aug_params": PRESET[task] if aug == "Aug" else None,
               "profile": profile, "dataset": dataset, "seed": seed, "date": date, "git_commit": "abc",
               "gan_critic_norm": critic if gen else None, "sampling_bn": bn if gen else None,
               "resolution": [128, 128], "train_cases": train_cases}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    per_image.to_csv(run_dir / file, index=False)
    return run_dir


def scr_frame(fold, values, **extra):
    ids = [f"JPC{fold}{i:03d}" for i in range(len(values))]
    return pd.DataFrame({"case_id": ids, "dice": values, "hausdorff_mm": 10 + 100 * (1 - values),
                         "hd95_mm": 5 + 50 * (1 - values), "assd_mm": 55 * (1 - values), **extra})


def scr_tree(root, *, shift=0.0, shifted=None, seeds=(0, 1), n=40, noise=0.004, rng_seed=0):
    """8-8-NoAug (A) and 16-0-NoAug (B), 3 folds x ``seeds``: a shared per-case base + per-run noise;
    A is B + ``shift`` in every run, or only in the runs ``shifted`` (a set of (fold, seed))."""
    rng = np.random.default_rng(rng_seed)
    for fold in (1, 2, 3):
        base = rng.uniform(0.95, 0.985, n)
        for seed in seeds:
            for net in ("8-8-NoAug", "16-0-NoAug"):
                v = base + rng.normal(0, noise, n)
                if net == "8-8-NoAug" and (shifted is None or (fold, seed) in shifted):
                    v = v + shift
                write_run(root, net, fold, seed, scr_frame(fold, v))
    return root


def line(frame, comparison, metric, scope="all paired folds"):
    hit = frame[(frame.comparison == comparison) & (frame.metric == metric) & (frame.scope == scope)]
    assert len(hit) == 1, (comparison, metric, frame[["comparison", "metric"]])
    return hit.iloc[0]


def table_ii(root, **kw):
    return S.compare_table("II", S.discover(root), n_boot=N_BOOT, **kw)


def test_comparisons_are_the_papers():
    assert [c[0] for c in S.comparisons("II")] == [
        "8-8-NoAug vs 16-0-NoAug", "8-8-Aug vs 16-0-Aug", "16-0-Aug vs 16-0-NoAug", "0-16-NoAug vs 16-0-NoAug",
        "0-16-Aug vs 16-0-Aug"]
    ids = set(pd.read_csv(REPO / "results" / "paper" / "table_IV.csv")["row_id"])
    assert {x for _, a, b in S.comparisons("IV") for x in (a, b)} == ids
    one = set(pd.read_csv(REPO / "results" / "paper" / "table_I.csv")["row_id"])
    assert {a for _, a, _ in S.comparisons("I")} == one - {"sh0_sc0_tr0_el0"}


def test_a_shift_in_every_run_gives_a_ci_around_it_that_excludes_zero(tmp_path):
    f = table_ii(scr_tree(tmp_path, shift=0.01))
    d = line(f, "8-8-NoAug vs 16-0-NoAug", "dice")
    assert abs(d.mean_diff - 0.01) < 0.002 and 0 < d.ci_low < 0.01 < d.ci_high
    assert (d.runs_a, d.runs_b, d.seeds_a, d.seeds_b, d.folds) == (6, 6, 2, 2, "1;2;3")
    assert d.seed_variance_included and d.n_images == 120 and d.seed_spread_a > 0
    assert d.paper_diff == pytest.approx(0.0026) and d.verdict == VERDICTS[0]
    assert 0 <= d.wilcoxon_within_run_p < 1e-6
    # The paper's Hausdorff is set against our ASSD only; our maximum is shown, not judged.
    hd, assd = line(f, "8-8-NoAug vs 16-0-NoAug", "hausdorff_mm"), line(f, "8-8-NoAug vs 16-0-NoAug", "assd_mm")
    assert hd.verdict.startswith("not judged (definition differs") and hd.mean_diff < 0
    assert assd.paper_diff == pytest.approx(1.2106 - 1.2626) and assd.verdict == VERDICTS[0]  # both lower
    assert line(f, "8-8-NoAug vs 16-0-NoAug", "hd95_mm").verdict == "no paper value; CI excludes 0"
    assert line(f, "8-8-Aug vs 16-0-Aug", "dice").verdict.startswith("not computed: 8-8-Aug has 0 finished runs")


def test_a_shift_in_one_run_only_gives_a_ci_that_includes_zero(tmp_path):
    f = table_ii(scr_tree(tmp_path, shift=0.03, shifted={(1, 0)}, rng_seed=1))
    d = line(f, "8-8-NoAug vs 16-0-NoAug", "dice")
    assert 0.003 < d.mean_diff < 0.007  # 0.03 / 2 seeds / 3 folds = 0.005
    assert d.ci_low <= 0 <= d.ci_high and d.verdict == VERDICTS[1]
    assert d.wilcoxon_within_run_p < 1e-3  # the per-image test calls it significant all the same


def test_identical_rows_give_a_ci_around_zero(tmp_path):
    rng = np.random.default_rng(2)
    for fold in (1, 2, 3):
        for seed in (0, 1):
            frame = scr_frame(fold, rng.uniform(0.95, 0.985, 30))
            for net in ("8-8-NoAug", "16-0-NoAug"):
                write_run(tmp_path, net, fold, seed, frame)
    d = line(table_ii(tmp_path), "8-8-NoAug vs 16-0-NoAug", "dice")
    assert d.mean_diff == 0 and d.ci_low <= 0 <= d.ci_high and d.ci_high - d.ci_low < 0.01


def test_folds_with_two_seeds_get_their_own_between_run_ci_while_the_others_have_one(tmp_path):
    scr_tree(tmp_path, shift=0.01, seeds=(0,))
    rng = np.random.default_rng(4)
    base = rng.uniform(0.95, 0.985, 40)
    for net, shift in (("8-8-NoAug", 0.01), ("16-0-NoAug", 0.0)):  # a second seed on fold 1 only
        write_run(tmp_path, net, 1, 1, scr_frame(1, base + shift + rng.normal(0, 0.004, 40)))
    f = table_ii(tmp_path)
    every = line(f, "8-8-NoAug vs 16-0-NoAug", "dice")
    assert (every.folds, every.runs_a, every.seeds_a, every.n_images) == ("1;2;3", 4, 1, 120)
    assert not every.seed_variance_included and every.verdict.endswith("(within-run CI: under 2 seeds on a side)")
    one = line(f, "8-8-NoAug vs 16-0-NoAug", "dice", scope="folds with 2+ seeds")
    assert (one.folds, one.runs_a, one.runs_b, one.seeds_a, one.n_images) == ("1", 2, 2, 2, 40)
    assert one.seed_variance_included and one.verdict == VERDICTS[0] and one.ci_low < 0.01 < one.ci_high
    assert len(one.run_dirs_a.split(";")) == 2 and "fold2" not in one.run_dirs_a
    # no second scope where it would repeat the first (every fold seeded) or be empty (no fold seeded)
    assert set(f[f.comparison == "8-8-Aug vs 16-0-Aug"].scope) == {"all paired folds"}


def test_cases_are_paired_by_case_id_whatever_the_csv_order(tmp_path):
    ordered, shuffled = tmp_path / "ordered", tmp_path / "shuffled"
    scr_tree(ordered, shift=0.004, seeds=(0,))
    scr_tree(shuffled, shift=0.004, seeds=(0,))
    for i, csv in enumerate(sorted(shuffled.rglob("16-0-NoAug/metrics_per_image.csv"))):
        pd.read_csv(csv).sample(frac=1.0, random_state=i).to_csv(csv, index=False)
    a, b = (line(table_ii(root), "8-8-NoAug vs 16-0-NoAug", "dice") for root in (ordered, shuffled))
    assert (a.mean_diff, a.ci_low, a.ci_high) == (b.mean_diff, b.ci_low, b.ci_high)
    assert not a.seed_variance_included and a.verdict.endswith("(within-run CI: under 2 seeds on a side)")


def test_runs_are_filtered_like_the_tables_and_copies_count_once(tmp_path):
    results = tmp_path / "results" / "cpu_real" / "runs"  # a results directory with copied runs
    scr_tree(results, shift=0.01, seeds=(0,))
    rng = np.random.default_rng(3)
    for fold in (1, 2, 3):  # another critic and another profile: not the same rows
        write_run(results, "8-8-NoAug", fold, 5, scr_frame(fold, rng.uniform(0.5, 0.6, 40)), critic="batch")
        write_run(results, "8-8-NoAug", fold, 0, scr_frame(fold, rng.uniform(0.5, 0.6, 40)), profile="paper")
    copy = tmp_path / "results" / "elsewhere"
    for run in (results / "scr_lung" / "cpu" / "real" / "fold1").iterdir():
        target = copy / run.name
        target.mkdir(parents=True)
        for f in run.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
    want = {"critic_norm": "layer", "sampling_bn": "moving"}
    f = S.compare_table("II", S.discover(tmp_path / "results"), profile="cpu", want=want, n_boot=N_BOOT)
    d = line(f, "8-8-NoAug vs 16-0-NoAug", "dice")
    assert (d.runs_a, d.runs_b) == (3, 3) and abs(d.mean_diff - 0.01) < 0.003
    assert d.profile == "cpu" and d.dataset == "real"
    with pytest.raises(ValueError, match=r"several profiles \['cpu', 'paper'\].*--profile"):
        S.compare_table("II", S.discover(tmp_path / "results"), n_boot=N_BOOT)


def test_only_common_folds_are_paired_and_bad_inputs_name_the_file(tmp_path):
    scr_tree(tmp_path, shift=0.01, seeds=(0,))
    rng = np.random.default_rng(4)
    write_run(tmp_path, "16-0-Aug", 1, 0, scr_frame(1, rng.uniform(0.95, 0.98, 40)))
    write_run(tmp_path, "16-0-Aug", 2, 0, scr_frame(2, rng.uniform(0.95, 0.98, 40)), file="other.csv")
    f = table_ii(tmp_path)
    assert line(f, "16-0-Aug vs 16-0-NoAug", "dice").verdict.startswith("not computed: ")
    assert "fold2/16-0-Aug/metrics_per_image.csv: per-image metrics missing" in \
        line(f, "16-0-Aug vs 16-0-NoAug", "dice").verdict
    (tmp_path / "scr_lung/cpu/real/fold2/16-0-Aug/other.csv").rename(
        tmp_path / "scr_lung/cpu/real/fold2/16-0-Aug/metrics_per_image.csv")
    d = line(table_ii(tmp_path), "16-0-Aug vs 16-0-NoAug", "dice")
    assert d.folds == "1;2" and d.note == "folds [3] of one side left out" and d.n_images == 80
    with pytest.raises(FileNotFoundError, match="--runs-dir"):
        S.discover(tmp_path / "nowhere")


def test_the_ladder_compares_gan_pairs_and_augmentation_with_neither_at_each_size(tmp_path):
    scr_tree(tmp_path, seeds=(0, 1))  # Table II's runs: fold 1 of them is the ladder's "all" rung
    rng = np.random.default_rng(5)
    base = rng.uniform(0.90, 0.96, 40)
    for net, shift in (("16-0-NoAug", 0.0), ("8-8-NoAug", 0.02), ("16-0-Aug", 0.0)):  # one seed at 9 cases
        write_run(tmp_path, net, 1, 0, scr_frame(1, base + shift + rng.normal(0, 0.004, 40)), train_cases=9)
    f = S.compare_table("ladder", S.discover(tmp_path), n_boot=N_BOOT)
    gan9 = line(f, "8-8-NoAug vs 16-0-NoAug, 9 training cases", "dice")
    assert abs(gan9.mean_diff - 0.02) < 0.003 and gan9.ci_low > 0 and (gan9.runs_a, gan9.runs_b) == (1, 1)
    assert gan9.verdict == "no paper value; CI excludes 0 (within-run CI: under 2 seeds on a side)"
    assert gan9.run_dirs_a.endswith("8-8-NoAug_critic-layer_bn-moving_train9") and pd.isna(gan9.paper_diff)
    aug9 = line(f, "16-0-Aug vs 16-0-NoAug, 9 training cases", "dice")
    assert aug9.ci_low <= 0 <= aug9.ci_high and aug9.verdict.startswith("no paper value; CI includes 0")
    full = line(f, "8-8-NoAug vs 16-0-NoAug, all training cases", "dice")
    assert (full.runs_a, full.seeds_a, full.n_images) == (2, 2, 40) and full.seed_variance_included
    assert full.verdict == "no paper value; CI includes 0"
    assert line(f, "16-0-Aug vs 16-0-NoAug, 25 training cases", "dice").verdict.startswith("not computed: ")
    # a subset's runs never stand in for the full training set's rows of Table II
    assert line(table_ii(tmp_path), "8-8-NoAug vs 16-0-NoAug", "dice").runs_a == 6
    assert "## Low-data ladder" in S.to_markdown(f)


def test_the_ladder_figure_shows_each_computed_difference_at_its_size(tmp_path):
    from matplotlib.collections import PathCollection

    from gan_seg_aug.reporting.result_figures import ladder_difference_plot, ladder_differences

    scr_tree(tmp_path, seeds=(0, 1))
    rng = np.random.default_rng(5)
    base = rng.uniform(0.90, 0.96, 40)
    for net, shift in (("16-0-NoAug", 0.0), ("8-8-NoAug", 0.02)):
        write_run(tmp_path, net, 1, 0, scr_frame(1, base + shift + rng.normal(0, 0.004, 40)), train_cases=9)
    f = S.compare_table("ladder", S.discover(tmp_path), n_boot=N_BOOT)
    d = ladder_differences(f)  # only what was computed: GAN pairs at 9 and at all cases, no 16-0-Aug anywhere
    assert d[["cases", "question"]].values.tolist() == [["9", "8-8-NoAug − 16-0-NoAug"],
                                                        ["all", "8-8-NoAug − 16-0-NoAug"]]
    assert d.mean_diff[0] == pytest.approx(0.02, abs=0.003) and d.seed_variance_included.tolist() == [False, True]
    ax = ladder_difference_plot(f).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["9", "all"]
    points = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    hollow = [c for c in points if (c.get_facecolors() == 1).all()]
    assert len(hollow) == 1 and hollow[0].get_offsets()[0][1] == pytest.approx(d.mean_diff[0])  # 1 run a side
    with pytest.raises(ValueError, match="no computed ladder comparison"):
        ladder_differences(f.assign(mean_diff=np.nan))


def city_frame(confs):
    cols = confusion_columns()
    return pd.DataFrame([{"case_id": c, **dict(zip(cols, np.asarray(m).ravel()))} for c, m in confs.items()])


def test_cityscapes_miou_is_resampled_from_per_image_confusion_counts(tmp_path):
    k = len(CITYSCAPES_CATEGORIES)
    human = CITYSCAPES_CATEGORIES.index("human")
    perfect = np.diag(np.full(k, 10))
    worse = perfect.copy()
    worse[human, human], worse[human, 0] = 5, 5  # half of 'human' predicted as void
    # 4-4-NoAug: both images perfect; 8-0-NoAug: image q loses half its human pixels.
    write_run(tmp_path, "4-4-NoAug", 1, 0, city_frame({"p": perfect, "q": perfect}), task="cityscapes")
    write_run(tmp_path, "8-0-NoAug", 1, 0, city_frame({"q": worse, "p": perfect}), task="cityscapes")
    f = S.compare_table("IV", S.discover(tmp_path), n_boot=N_BOOT)
    # 8-0 summed: human IoU 15 / 20, void IoU 20 / 25, the others 1 -> mIoU8 = 1 - (0.25 + 0.2) / 8.
    d = line(f, "4-4-NoAug vs 8-0-NoAug", "miou8")
    assert d.mean_diff == pytest.approx((0.25 + 0.2) / 8) and d.n_images == 2
    assert d.paper_diff == pytest.approx(0.7630 - 0.7616)
    # a resample drawing image p twice has no difference at all, so 0 is inside the CI
    assert d.ci_low == 0 and d.verdict == VERDICTS[1] + " (within-run CI: under 2 seeds on a side)"
    no_ho = line(f, "4-4-NoAug vs 8-0-NoAug", "miou8_no_human_object")  # human left out: only void's loss
    assert no_ho.mean_diff == pytest.approx(0.2 / 6)
    old = tmp_path / "old"
    write_run(old, "4-4-NoAug", 1, 0, pd.DataFrame({"case_id": ["p"], "miou8": [1.0]}), task="cityscapes")
    write_run(old, "8-0-NoAug", 1, 0, pd.DataFrame({"case_id": ["p"], "miou8": [1.0]}), task="cityscapes")
    v = line(S.compare_table("IV", S.discover(old), n_boot=N_BOOT), "4-4-NoAug vs 8-0-NoAug", "miou8").verdict
    assert "no per-image confusion counts" in v and "metrics_per_image.csv" in v


def test_compare_cli_end_to_end_on_a_tmp_runs_tree(tmp_path):
    scr_tree(tmp_path / "results" / "runs", shift=0.01)
    results, out = tmp_path / "results", tmp_path / "stats"
    cmd = [sys.executable, str(REPO / "experiments" / "compare.py"), str(results), "--runs-dir", str(results),
           "--stats-out", str(out), "--n-boot", "200"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    csv = pd.read_csv(out / "comparisons_stats.csv")
    assert list(csv.columns) == S.COLUMNS and set(csv.table) == {"I", "II", "ladder"}
    d = line(csv, "8-8-NoAug vs 16-0-NoAug", "dice")
    assert d.verdict == VERDICTS[0] and d.runs_a == 6 and d.ci_low > 0
    md = (out / "comparisons_stats.md").read_text()
    assert "## Table II" in md and "| 8-8-NoAug vs 16-0-NoAug | all paired folds | dice |" in md and "at commit" in md
    assert "8-8-NoAug vs 16-0-NoAug" in proc.stdout and "no table_" not in proc.stderr
    # fold 1 of these runs is also the ladder's all-cases rung, so its figure is drawn
    assert (out / "ladder_differences.png").read_bytes()[:4] == b"\x89PNG"
    # Without --runs-dir the old behaviour stays: no tables -> exit 1, nothing written.
    proc = subprocess.run(cmd[:3], capture_output=True, text=True)
    assert proc.returncode == 1 and "run experiments/tables.py first" in proc.stderr
    proc = subprocess.run(cmd[:5] + ["--n-boot", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--n-boot" in proc.stderr and "expected a whole number >= 1" in proc.stderr
