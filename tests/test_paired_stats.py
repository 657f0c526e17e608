"""Run-level paired statistics (gan_seg_aug.evaluation.paired_stats) on constructed data with known answers."""
import numpy as np
import pandas as pd
import pytest

from gan_seg_aug.evaluation.paired_stats import (VERDICTS, compare_configs, miou_difference, paired_difference,
                                      to_markdown, verdict)

N_BOOT = 400
FOLDS, N_CASES = (0, 1, 2), 82  # the paper's 3 SCR folds of ~82 test images


def _base(seed=0):
    """Per-fold 'true' per-case Dice of a configuration, shared by every run."""
    rng = np.random.default_rng(seed)
    return {f: rng.uniform(0.90, 0.98, N_CASES) for f in FOLDS}


def _runs(base, rng, *, seeds=(0, 1), noise=0.01, shift=0.0, shifted_runs=None):
    """One (run_key, frame) per fold x seed: base + independent per-run noise, + ``shift``
    on every run, or only on the runs in ``shifted_runs``."""
    out = []
    for f, b in base.items():
        for s in seeds:
            v = b + rng.normal(0, noise, b.size)
            if shifted_runs is None or (f, s) in shifted_runs:
                v = v + shift
            out.append(((f, s), pd.DataFrame({"case_id": [f"f{f}c{i:03d}" for i in range(b.size)],
                                              "dice": v})))
    return out


def test_shift_in_every_run_gives_ci_around_it_excluding_zero():
    base, rng = _base(), np.random.default_rng(1)
    a, b = _runs(base, rng, shift=0.01), _runs(base, rng)
    r = paired_difference(a, b, "dice", n_boot=N_BOOT)
    assert r["seed_variance_included"] and r["runs_a"] == r["runs_b"] == 6 and r["n_folds"] == 3
    assert r["n_images"] == 3 * N_CASES and r["runs_per_side"] == {"a": 2, "b": 2}
    assert abs(r["mean_diff"] - 0.01) < 0.002
    assert 0 < r["ci_low"] < 0.01 < r["ci_high"] < 0.02
    assert r["p_boot"] == 1 / N_BOOT  # every resample > 0: clipped, not 0
    assert all(v is not None and 0 < v < 0.005 for v in r["seed_spread"].values())


def test_shift_in_one_run_only_is_not_significant_once_seed_variance_counts():
    """Construction: 3 folds x 2 seeds per side, every run = shared base + independent N(0, 0.01)
    noise per case; only run (fold 0, seed 0) of A is shifted by +0.05.  A resample that draws
    fold 0's unshifted A seed twice (probability 1/4) has no shift at all, so the 95% CI must reach
    0 -- while the per-image Wilcoxon is overwhelmingly 'significant'.  On the same data, the
    shifted run against one B run (one seed per side) excludes 0: that test measures runs."""
    base, rng = _base(), np.random.default_rng(2)
    a, b = _runs(base, rng, shift=0.05, shifted_runs={(0, 0)}), _runs(base, rng)
    r = paired_difference(a, b, "dice", n_boot=N_BOOT)
    assert r["seed_variance_included"]
    assert 0.005 < r["mean_diff"] < 0.012  # 0.05 / 2 seeds / 3 folds = 0.0083
    assert r["ci_low"] <= 0 <= r["ci_high"] and r["p_boot"] > 0.05
    assert r["wilcoxon_within_run_p"] < 1e-4
    assert r["seed_spread"]["a"] > 10 * r["seed_spread"]["b"]

    single = paired_difference([a[0]], [b[0]], "dice", n_boot=N_BOOT)
    assert not single["seed_variance_included"] and single["seed_spread"] == {"a": None, "b": None}
    assert single["runs_per_side"] == {"a": 1, "b": 1} and single["ci_low"] > 0.04


def test_identical_sides_give_zero():
    base, rng = _base(), np.random.default_rng(3)
    runs = _runs(base, rng)
    r = paired_difference(runs, runs, "dice", n_boot=N_BOOT)
    assert r["mean_diff"] == 0 and r["wilcoxon_within_run_p"] is None
    # Seeds are resampled independently per side, so the CI has the width of the seed spread only.
    assert r["ci_low"] <= 0 <= r["ci_high"] and r["ci_high"] - r["ci_low"] < 0.004

    one = paired_difference(runs[:1], runs[:1], "dice", n_boot=N_BOOT)
    assert one["ci_low"] == one["ci_high"] == one["mean_diff"] == 0 and one["p_boot"] == 1


def test_pairing_is_by_case_id_not_row_order():
    base, rng = _base(), np.random.default_rng(4)
    a, b = _runs(base, rng, shift=0.003), _runs(base, rng)
    ref = paired_difference(a, b, "dice", n_boot=N_BOOT)
    shuffled = [(k, f.sample(frac=1.0, random_state=i)) for i, (k, f) in enumerate(b)]
    assert not shuffled[0][1]["case_id"].equals(b[0][1]["case_id"])
    assert paired_difference(a, shuffled, "dice", n_boot=N_BOOT) == ref
    # Pairing by position after the shuffle would be a different (much noisier) answer.
    by_row = [(k, f.assign(case_id=b[i][1]["case_id"].to_numpy())) for i, (k, f) in enumerate(shuffled)]
    assert paired_difference(a, by_row, "dice", n_boot=N_BOOT)["mean_diff"] != ref["mean_diff"]


def test_mismatched_case_sets_raise_naming_the_fold():
    base, rng = _base(), np.random.default_rng(5)
    a, b = _runs(base, rng), _runs(base, rng)
    b[5] = (b[5][0], b[5][1].iloc[1:])  # run (fold 2, seed 1) of B lacks one case
    with pytest.raises(ValueError, match=r"fold 2\b.*f2c000"):
        paired_difference(a, b, "dice", n_boot=N_BOOT)
    with pytest.raises(ValueError, match="only in A"):
        paired_difference(a, [r for r in b if r[0][0] != 1], "dice", n_boot=N_BOOT)


def test_non_finite_values_are_dropped_from_both_sides_per_metric():
    ids = ["a", "b", "c", "d"]
    fa = pd.DataFrame({"case_id": ids, "dice": [0.9, 0.8, 0.7, 0.6], "hausdorff_mm": [1.0, np.inf, 3.0, 4.0]})
    fb = pd.DataFrame({"case_id": ids, "dice": [0.8, 0.8, 0.8, 0.8], "hausdorff_mm": [2.0, 2.0, np.nan, 2.0]})
    fa2 = fa.assign(hausdorff_mm=[1.0, 2.0, 3.0, 8.0])
    a, b = [((0, 0), fa), ((1, 0), fa2)], [((0, 0), fb), ((1, 0), fb)]
    h = paired_difference(a, b, "hausdorff_mm", n_boot=N_BOOT)
    # fold 0 keeps a, d (b inf in A, c NaN in B); fold 1 keeps a, b, d (c NaN in B)
    assert h["n_dropped"] == 3 and h["n_images"] == 5
    assert h["mean_diff"] == pytest.approx(np.mean([1 - 2, 4 - 2, 1 - 2, 2 - 2, 8 - 2]))
    d = paired_difference(a, b, "dice", n_boot=N_BOOT)
    assert d["n_dropped"] == 0 and d["n_images"] == 8
    nan_b = [(k, f.assign(dice=np.nan)) for k, f in b]
    with pytest.raises(ValueError, match="no case with finite values"):
        paired_difference(a, nan_b, "dice", n_boot=N_BOOT)


def _conf(rows):
    """A 3-class confusion matrix; class 2 never occurs (must be ignored, not counted as IoU 0)."""
    m = np.zeros((3, 3))
    m[:2, :2] = rows
    return m


def test_miou_difference_point_estimate_by_hand_and_reproducible_bootstrap():
    a0 = {"p": _conf([[4, 0], [0, 4]]), "q": _conf([[4, 0], [0, 4]])}
    a1 = {"p": _conf([[3, 1], [0, 4]]), "q": _conf([[4, 0], [0, 4]])}
    b0 = {"p": _conf([[2, 2], [0, 4]]), "q": _conf([[4, 0], [2, 2]])}
    r = miou_difference([((0, 0), a0), ((0, 1), a1)], [((0, 0), b0)], n_classes=3, n_boot=N_BOOT)
    # A: seed-averaged summed confusion [[7.5, 0.5], [0, 8]] -> IoU 7.5/8 and 8/8.5.
    # B: summed [[6, 2], [2, 6]] -> IoU 0.6, 0.6 (per-image means would give 7/12 instead).
    assert r["mean_diff"] == pytest.approx((7.5 / 8 + 8 / 8.5) / 2 - 0.6)
    assert r["metric"] == "miou" and r["n_images"] == 2 and not r["seed_variance_included"]

    rng = np.random.default_rng(6)
    def run():
        return {f"img{i}": rng.integers(0, 50, (3, 3)) + np.diag(rng.integers(100, 300, 3)) for i in range(30)}
    a_runs = [((0, s), run()) for s in range(2)]
    b_runs = [((0, s), run()) for s in range(2)]
    first = miou_difference(a_runs, b_runs, n_classes=3, n_boot=N_BOOT, seed=7)
    assert miou_difference(a_runs, b_runs, n_classes=3, n_boot=N_BOOT, seed=7) == first
    other = miou_difference(a_runs, b_runs, n_classes=3, n_boot=N_BOOT, seed=8)
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])
    assert other["mean_diff"] == first["mean_diff"] and first["ci_low"] < first["mean_diff"] < first["ci_high"]
    # Same resampled images on both sides: identical single runs give a zero-width interval.
    same = miou_difference(a_runs[:1], a_runs[:1], n_classes=3, n_boot=N_BOOT)
    assert same["ci_low"] == same["ci_high"] == 0
    with pytest.raises(ValueError, match="fold 0"):
        miou_difference(a_runs, [(k, {c: m for c, m in d.items() if c != "img3"}) for k, d in b_runs],
                        n_classes=3, n_boot=N_BOOT)


@pytest.mark.parametrize("lo, hi, paper, expected", [
    (0.002, 0.010, 0.004, VERDICTS[0]),
    (-0.001, 0.005, 0.004, VERDICTS[1]),
    (-0.010, -0.002, 0.004, VERDICTS[2]),
    (-0.005, 0.001, 0.004, VERDICTS[3]),
    (-0.005, 0.001, 0.0, VERDICTS[4]),
    (0.002, 0.010, -0.5, VERDICTS[2]),
])
def test_verdict_strings(lo, hi, paper, expected):
    assert verdict(lo, hi, paper) == expected


def test_verdict_exact_strings_and_bad_input():
    assert VERDICTS == ("same direction, CI excludes 0", "same direction, CI includes 0",
                        "opposite direction, CI excludes 0", "opposite direction, CI includes 0",
                        "paper reports no difference")
    with pytest.raises(ValueError):
        verdict(0.01, -0.01, 0.003)
    with pytest.raises(ValueError):
        verdict(0.0, 0.01, float("nan"))


def test_compare_configs_and_markdown():
    base, rng = _base(), np.random.default_rng(9)
    table = {"gan": _runs(base, rng, shift=0.01), "plain": _runs(base, rng)}
    for runs in table.values():
        for _, f in runs:
            f["hd95_mm"] = 5 - 10 * f["dice"]
    df = compare_configs(table, [("gan vs plain", "gan", "plain")], ["dice", "hd95_mm"],
                         {("gan vs plain", "dice"): 0.004}, n_boot=N_BOOT)
    assert list(df["metric"]) == ["dice", "hd95_mm"] and len(df) == 2
    assert df.loc[0, "verdict"] == VERDICTS[0] and df.loc[0, "paper_diff"] == 0.004
    assert pd.isna(df.loc[1, "verdict"]) and pd.isna(df.loc[1, "paper_diff"]) and df.loc[1, "mean_diff"] < 0
    md = to_markdown(df)
    lines = md.splitlines()
    assert len(lines) == 2 + len(df)
    assert lines[0].startswith("| comparison | config_a |") and set(lines[1]) <= set("| -")
    assert all(line.count(" | ") == len(df.columns) - 1 for line in lines)
    assert "same direction, CI excludes 0" in lines[2] and "a=2, b=2" in lines[2]


def test_miou_difference_over_a_subset_of_classes():
    """Table IV's second column (mIoU without 'human' and 'object', paper §V-B) is the same
    dataset-level IoU averaged over the remaining classes only."""
    a = {"p": _conf([[4, 0], [0, 4]]), "q": _conf([[4, 0], [0, 4]])}
    b = {"p": _conf([[2, 2], [0, 4]]), "q": _conf([[4, 0], [0, 4]])}  # class 0: IoU 6/8, class 1: 8/10
    both = miou_difference([(0, a)], [(0, b)], n_classes=3, n_boot=N_BOOT)
    only1 = miou_difference([(0, a)], [(0, b)], n_classes=3, classes=[1], metric="miou_c1", n_boot=N_BOOT)
    assert both["mean_diff"] == pytest.approx(1 - (6 / 8 + 8 / 10) / 2)
    assert only1["mean_diff"] == pytest.approx(1 - 8 / 10) and only1["metric"] == "miou_c1"
    with pytest.raises(ValueError, match=r"classes \[3\]: expected indices in 0..2"):
        miou_difference([(0, a)], [(0, b)], n_classes=3, classes=[3], n_boot=N_BOOT)
