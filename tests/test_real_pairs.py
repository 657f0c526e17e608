"""Mixed against real-only runs at equal real pairs seen (gan_seg_aug.reporting.real_pairs, experiments/compare.py).

Every run here is fabricated in tmp_path: summary.json, history.csv and a per-image CSV in the layout of the
commands, with curves built so the reading has a known answer.  Nothing is trained.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gan_seg_aug.reporting import real_pairs as RP
from gan_seg_aug.reporting.run_statistics import discover

REPO = Path(__file__).resolve().parents[1]


def write_run(root, network_id, curve, *, fold=1, seed=0, best=None, dice=None, history=True):
    """A finished SCR run; ``curve`` is ``{iteration: val_loss}``, ``best`` its best iteration (default: argmin)."""
    r, g, aug = network_id.split("-")
    gen = int(g) > 0
    name = network_id + ("_critic-layer_bn-moving" if gen else "") + (f"_seed{seed}" if seed else "")
    run_dir = Path(root) / "scr_lung" / "cpu" / "real" / f"fold{fold}" / name
    run_dir.mkdir(parents=True)
    its = sorted(curve)
    summary = {"task": "scr_lung", "fold": fold, "network_id": network_id, "run_name": name, "n_real": int(r),
               "n_generated": int(g), "augment": aug == "Aug", "aug_params": None, "profile": "cpu",
               "dataset": "real", "seed": seed, "date": "2026-12-01T00:00:00+00:00", "git_commit": "abc",
               "gan_critic_norm": "layer" if gen else None, "sampling_bn": "moving" if gen else None,
               "resolution": [128, 128], "train_cases": None, "unet_iterations": its[-1],
               "best_iteration": best if best is not None else min(its, key=curve.get)}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if history:
        pd.DataFrame({"iteration": its, "train_loss": 0.1, "val_loss": [curve[i] for i in its]}).to_csv(
            run_dir / "history.csv", index=False)
    values = np.asarray(dice if dice is not None else np.full(20, 0.95))
    pd.DataFrame({"case_id": [f"JPC{fold}{i:03d}" for i in range(len(values))], "dice": values,
                  "hausdorff_mm": 10.0, "hd95_mm": 5.0, "assd_mm": 1.0}).to_csv(
        run_dir / "metrics_per_image.csv", index=False)
    return run_dir


def one(frame, **where):
    hit = frame
    for k, v in where.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, (where, frame)
    return hit.iloc[0]


def test_each_reference_is_read_after_the_mixed_runs_real_pairs(tmp_path):
    # 8-8 is best at iteration 100 (0.50) after 800 real pairs: 16-0 had seen those by iteration 50 (0.60),
    # the 8-0 control by iteration 100 (0.45, after a lower 0.44 at 50: the lowest so far counts).
    write_run(tmp_path, "8-8-NoAug", {50: 0.7, 100: 0.5, 150: 0.55})
    write_run(tmp_path, "16-0-NoAug", {50: 0.6, 100: 0.3, 150: 0.2})
    write_run(tmp_path, "8-0-NoAug", {50: 0.44, 100: 0.45, 150: 0.40})
    lines, tests = RP.table_lines("II", discover(tmp_path))
    full = one(lines, reference=RP.FULL, comparison="8-8-NoAug vs 16-0-NoAug")
    assert full.real_pairs_at_best_a == 800 and full.real_pairs_at_end_a == 1200
    assert full.val_loss_ref_at_same_real_pairs == pytest.approx(0.6) and full["diff"] == pytest.approx(-0.1)
    assert full.ref_reached_them and full.real_pairs_at_end_ref == 2400
    half = one(lines, reference=RP.HALF)
    assert half.comparison == "8-8-NoAug vs 8-0-NoAug" and half.reference_row == "8-0-NoAug"
    assert half.val_loss_ref_at_same_real_pairs == pytest.approx(0.44) and half["diff"] == pytest.approx(0.06)
    assert len(tests) == 1 and tests.iloc[0].comparison == "8-8-NoAug vs 8-0-NoAug"


def test_a_reference_that_stopped_early_is_flagged(tmp_path):
    write_run(tmp_path, "8-8-NoAug", {50: 0.7, 300: 0.5, 350: 0.6})  # 2,400 real pairs at its best
    write_run(tmp_path, "16-0-NoAug", {50: 0.6, 100: 0.4})  # stopped after 1,600
    line = one(RP.table_lines("II", discover(tmp_path))[0], reference=RP.FULL)
    assert not line.ref_reached_them and line.val_loss_ref_at_same_real_pairs == pytest.approx(0.4)


def test_runs_pair_within_a_fold_only_and_without_a_control_there_is_no_test_line(tmp_path):
    for fold in (1, 2):
        for seed in (0, 1):
            write_run(tmp_path, "8-8-NoAug", {100: 0.5}, fold=fold, seed=seed)
            write_run(tmp_path, "16-0-NoAug", {50: 0.5 + fold}, fold=fold, seed=seed)
    lines, tests = RP.table_lines("II", discover(tmp_path))
    assert len(lines) == 2 * 2 * 2  # per fold: 2 mixed seeds x 2 reference seeds
    assert set(lines.reference) == {RP.FULL} and tests.empty
    assert list(lines.groupby("fold")["diff"].max()) == [-1, -2]  # fold 1 never read against fold 2's curve


def test_half_batch_test_score_difference_has_a_ci_over_runs(tmp_path):
    rng = np.random.default_rng(0)
    for fold in (1, 2, 3):
        base = rng.uniform(0.93, 0.97, 30)
        for seed in (0, 1):
            write_run(tmp_path, "8-8-NoAug", {50: 0.5}, fold=fold, seed=seed,
                      dice=base + 0.01 + rng.normal(0, 0.002, 30))
            write_run(tmp_path, "8-0-NoAug", {50: 0.5}, fold=fold, seed=seed, dice=base + rng.normal(0, 0.002, 30))
    _, tests = RP.table_lines("II", discover(tmp_path), n_boot=300)
    t = one(tests, comparison="8-8-NoAug vs 8-0-NoAug")
    assert t.folds == "1;2;3" and t.metric == "dice" and t.runs_a == 6 and t.runs_b == 6 and t.seed_variance_included
    assert t.ci_low < 0.01 < t.ci_high and t.ci_low > 0


def test_a_run_without_its_curve_is_skipped_not_fatal(tmp_path, caplog):
    write_run(tmp_path, "8-8-NoAug", {50: 0.5}, history=False)
    write_run(tmp_path, "8-8-NoAug", {50: 0.5}, seed=1)
    write_run(tmp_path, "16-0-NoAug", {50: 0.6})
    lines, _ = RP.table_lines("II", discover(tmp_path))
    assert list(lines.seed_a) == [1]
    assert "history.csv" in caplog.text and "training curve missing" in caplog.text


def test_compare_writes_the_reading_next_to_the_statistics(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    write_run(runs, "8-8-NoAug", {50: 0.7, 100: 0.5})
    write_run(runs, "16-0-NoAug", {50: 0.6, 100: 0.3})
    write_run(runs, "8-0-NoAug", {50: 0.5, 100: 0.45})
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "compare.py"), str(runs),
                           "--runs-dir", str(runs), "--stats-out", str(out), "--n-boot", "50"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = pd.read_csv(out / "comparisons_real_pairs.csv")
    assert set(lines.reference) == {RP.FULL, RP.HALF}
    # fold 1's runs are Table II's and the ladder's all-cases rung, as in comparisons_stats
    tests = pd.read_csv(out / "comparisons_real_pairs_test.csv")
    assert sorted(tests.comparison) == ["8-8-NoAug vs 8-0-NoAug", "8-8-NoAug_trainall vs 8-0-NoAug_trainall"]
    md = (out / "comparisons_real_pairs.md").read_text()
    assert "half-batch" in md and "8-8-NoAug vs 8-0-NoAug" in md and "_Made by" in md
