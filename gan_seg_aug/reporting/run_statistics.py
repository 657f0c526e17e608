"""The comparisons the paper draws between rows of its Tables I-IV, with run-to-run noise.

Paper §V-A reads Table II as mixed vs real data ("8-8" vs "16-0", with and without augmentation), augmentation
vs none, and synthetic-only vs real ("the networks trained on strictly synthetic data"); §V-B reads Table IV
the same way for Cityscapes (4-4 / 0-8 vs 8-0); Tables I and III compare each augmentation setting with none
(thesis §5.1.2, §5.2.2).  The low-data ladder (issue 14, not in the paper) draws Table II's GAN and
augmentation comparisons again at each training-set size.  For each such pair of rows this module finds every
finished U-Net run of both rows -- all folds, all seeds -- and hands their per-image tables to
:mod:`gan_seg_aug.evaluation.paired_stats` (hierarchical bootstrap: runs paired by fold, seeds resampled,
images matched by case id).

A run is any directory below the given root holding ``summary.json`` (a runs tree laid out as in
:mod:`gan_seg_aug.layout`, or the copy of one inside a results directory, ``results/<x>/runs/``);
which row it belongs to is decided by its summary with :func:`.table_builder.matches`, the filter the
tables use (configuration, critic normalisation, sampling BN), plus its profile and dataset.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gan_seg_aug.artifacts import read_json
from gan_seg_aug.config import CITYSCAPES_CATEGORIES
from gan_seg_aug.evaluation import paired_stats as P
from gan_seg_aug.evaluation.segmentation import confusion_columns
from gan_seg_aug.reporting import paper_comparison as PC
from gan_seg_aug.reporting.run_catalogue import (LADDER, LADDER_CASES, TABLE_TASK, TABLES, TableRow, ladder_row_id,
                                                  table_rows)
from gan_seg_aug.reporting.table_builder import FinishedRun, display_path, matches

log = logging.getLogger(__name__)

# Tables I / III are validation scores (thesis Tables 5.1 / 5.3), II / IV test scores.
PER_IMAGE = {"I": "metrics_val_per_image.csv", "II": "metrics_per_image.csv",
             "III": "metrics_val_per_image.csv", "IV": "metrics_per_image.csv", LADDER: "metrics_per_image.csv"}
# (our per-image metric, the paper's column it is set against; None: the paper has no such value).
# The paper's "Hausdorff" stands beside each distance; paper_comparison.hd_rule says which is judged.
METRICS = {"I": (("dice", "val_dice_mean"),),
           "II": (("dice", "dice_mean"), ("hausdorff_mm", "hausdorff_mm_mean"), ("hd95_mm", None),
                  ("assd_mm", "hausdorff_mm_mean")),
           "III": (("miou8", "val_miou8"),),
           "IV": (("miou8", "miou8"), ("miou8_no_human_object", "miou8_no_human_object")),
           LADDER: (("dice", None), ("hausdorff_mm", None), ("hd95_mm", None), ("assd_mm", None))}
LADDER_TITLE = "Low-data ladder: SCR fold 1 on nested training subsets (test, not in the paper)"
NO_HUMAN_OBJECT = tuple(i for i, c in enumerate(CITYSCAPES_CATEGORIES) if c not in ("human", "object"))
BASELINE = {"I": "sh0_sc0_tr0_el0", "III": "sh0_sc0_tr0_flip0"}
SCOPE_ALL = "all paired folds"  # the scope of every comparison's main lines (compare_table)
COLUMNS = ["table", "comparison", "scope", "metric", "paper_metric", "mean_diff", "ci_low", "ci_high", "paper_diff",
           "verdict", "runs_a", "runs_b", "folds", "seeds_a", "seeds_b", "seed_variance_included",
           "seed_spread_a", "seed_spread_b", "wilcoxon_within_run_p", "p_boot", "n_images", "n_dropped",
           "config_a", "config_b", "profile", "dataset", "note", "run_dirs_a", "run_dirs_b"]


def ladder_comparisons() -> list[tuple[str, str, str, int | None, str]]:
    """``(name, row A, row B, training cases, question)`` of the ladder (None = all cases): at each size, GAN
    pairs added to real ones and standard augmentation, each against neither; ``question`` is the same at every size.

    >>> name, row_a, row_b, cases, question = ladder_comparisons()[-1]
    >>> name, row_a, cases, question
    ('16-0-Aug vs 16-0-NoAug, all training cases', '16-0-Aug_trainall', None, '16-0-Aug − 16-0-NoAug')
    """
    return [(f"{a} vs {b}, {n or 'all'} training cases", ladder_row_id(a, n), ladder_row_id(b, n), n, f"{a} − {b}")
            for n in LADDER_CASES for a, b in (("8-8-NoAug", "16-0-NoAug"), ("16-0-Aug", "16-0-NoAug"))]


def comparisons(table: str) -> list[tuple[str, str, str]]:
    """``(name, row A, row B)`` the paper draws in ``table``; the statistic is A - B.

    >>> comparisons("IV")[:2]
    [('4-4-NoAug vs 8-0-NoAug', '4-4-NoAug', '8-0-NoAug'), ('4-4-Aug vs 8-0-Aug', '4-4-Aug', '8-0-Aug')]
    >>> len(comparisons("I")), comparisons("III")[0][2]
    (8, 'sh0_sc0_tr0_flip0')
    >>> comparisons("ladder")[0]
    ('8-8-NoAug vs 16-0-NoAug, 9 training cases', '8-8-NoAug_train9', '16-0-NoAug_train9')
    """
    if table == LADDER:
        return [c[:3] for c in ladder_comparisons()]
    if table in BASELINE:
        base = BASELINE[table]
        return [(f"{r.row_id} vs {base}", r.row_id, base) for r in table_rows(table) if r.row_id != base]
    if table not in ("II", "IV"):
        raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
    full, mixed, synth = ("16-0", "8-8", "0-16") if table == "II" else ("8-0", "4-4", "0-8")
    pairs = [(f"{mixed}-NoAug", f"{full}-NoAug"), (f"{mixed}-Aug", f"{full}-Aug"), (f"{full}-Aug", f"{full}-NoAug"),
             (f"{synth}-NoAug", f"{full}-NoAug"), (f"{synth}-Aug", f"{full}-Aug")]
    return [(f"{a} vs {b}", a, b) for a, b in pairs]


def discover(root) -> list[FinishedRun]:
    """Every finished U-Net run below ``root`` (a ``summary.json`` naming its task), at any depth."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--runs-dir {root}: not a directory")
    out = []
    for path in sorted(root.rglob("summary.json")):
        try:
            s = read_json(path)
        except ValueError as e:  # one corrupt summary must not hide the other runs
            log.warning(f"skipping {e}")
            continue
        if isinstance(s, dict) and s.get("task"):
            out.append(FinishedRun(path.parent, s))
    return out


def task_runs(runs, task, profile, dataset):
    """The runs of ``task`` with one profile and dataset (given, or the only ones present)."""
    runs, chosen = [r for r in runs if r.summary.get("task") == task], {}
    for key, value in (("profile", profile), ("dataset", dataset)):
        found = sorted({str(r.summary.get(key)) for r in runs})
        if value is None:
            if len(found) > 1:
                raise ValueError(f"{task}: runs of several {key}s {found}; choose one with --{key}")
            value = found[0] if found else None
        runs, chosen[key] = [r for r in runs if str(r.summary.get(key)) == value], value
    return runs, chosen["profile"], chosen["dataset"]


def row_runs(row: TableRow, runs, want=None) -> dict:
    """``{(fold, seed): FinishedRun}`` of one table row: every run matching any of its specs.

    Two directories with the same fold and seed (a copy, a rerun) keep the newest by summary date;
    exact copies (same date and commit) silently, others with a warning.
    """
    out = {}
    for r in runs:
        if not any(matches(spec, r.summary, want) for spec in row.runs):
            continue
        key = (int(r.summary.get("fold", 1)), int(r.summary.get("seed") or 0))
        old = out.get(key)
        if old is not None:
            same = all(old.summary.get(k) == r.summary.get(k) for k in ("date", "git_commit"))
            if not same:
                log.warning(f"{row.row_id} fold {key[0]} seed {key[1]}: {old.run_dir} and {r.run_dir}; "
                            f"keeping the newer")
            if str(r.summary.get("date", "")) <= str(old.summary.get("date", "")):
                continue
        out[key] = r
    return out


def per_image_table(run: FinishedRun, table: str):
    csv = run.run_dir / PER_IMAGE[table]
    if not csv.exists():
        raise ValueError(f"{csv}: per-image metrics missing (the run predates them, or was copied without them)")
    df = pd.read_csv(csv)
    if TABLE_TASK[table] == "scr_lung":
        return df
    cols = confusion_columns()
    if not set(cols) <= set(df.columns) or "case_id" not in df:
        raise ValueError(f"{csv}: no per-image confusion counts (conf_<true>_as_<pred> columns, written by "
                         f"evaluate_cityscapes since they were added); mIoU cannot be resampled")
    k = len(CITYSCAPES_CATEGORIES)
    return {str(c): m.reshape(k, k) for c, m in zip(df["case_id"], df[cols].to_numpy(np.float64))}


def difference(table, metric, a, b, n_boot, seed):
    if TABLE_TASK[table] == "scr_lung":
        return P.paired_difference(a, b, metric, n_boot=n_boot, seed=seed)
    classes = NO_HUMAN_OBJECT if metric == "miou8_no_human_object" else None
    return P.miou_difference(a, b, n_classes=len(CITYSCAPES_CATEGORIES), classes=classes, metric=metric,
                             n_boot=n_boot, seed=seed)


def _verdict(metric, paper_metric, r, paper_diff) -> str:
    if paper_metric is None:  # nothing to set it against, but whether the CI excludes 0 is still the finding
        v = "no paper value; CI " + ("excludes 0" if r["ci_low"] > 0 or r["ci_high"] < 0 else "includes 0")
        return v if r["seed_variance_included"] else v + " (within-run CI: under 2 seeds on a side)"
    if paper_metric.startswith("hausdorff"):
        rule = PC.hd_rule(metric)
        if rule is not None:
            return rule
    if paper_diff is None or not math.isfinite(paper_diff):
        return "no paper value"
    v = P.verdict(r["ci_low"], r["ci_high"], paper_diff)
    # A CI without seed variance measures these runs only; the verdict must not read as more.
    return v if r["seed_variance_included"] else v + " (within-run CI: under 2 seeds on a side)"


def _paper_diffs(table, paper_dir) -> dict:
    if table not in TABLES:  # the ladder: no paper value to set our differences against
        return {}
    csv = Path(paper_dir) / f"table_{table}.csv"
    if not csv.exists():
        raise FileNotFoundError(f"{csv}: the paper's Table {table} is missing (expected results/paper/)")
    return {str(r["row_id"]): r for r in pd.read_csv(csv).to_dict("records")}


def _seeded_folds(found, folds) -> list:
    """The ``folds`` in which both sides have at least 2 seeds: the only ones whose CI can hold seed noise."""
    return [f for f in folds if all(sum(1 for g, _ in side if g == f) >= 2 for side in found.values())]


def _lines(table, name, ra, rb, found, folds, scope, paper, *, n_boot, seed, common_note, context):
    """The lines (one per metric) of one comparison over ``folds``."""
    data, error = {}, None
    if not folds:
        error = "not computed: " + "; ".join(f"{k} has {len(v)} finished runs" + (
            f" (folds {sorted({f for f, _ in v})})" if v else "") for k, v in found.items())
    else:
        try:
            data = {k: [((f, s), per_image_table(r, table)) for (f, s), r in sorted(v.items()) if f in folds]
                    for k, v in found.items()}
        except ValueError as e:
            error = f"not computed: {e}"
    def keep(fold):  # the runs a line rests on; a line not computed names all that were found
        return fold in folds or not folds

    lines = []
    for metric, paper_metric in METRICS[table]:
        pa, pb = (paper.get(k, {}).get(paper_metric) if paper_metric else None for k in (ra, rb))
        # round(): the paper prints 4 decimals; the difference should not carry float noise
        pdiff = round(float(pa) - float(pb), 6) if paper_metric and pa is not None and pb is not None else None
        line = dict(table=table, comparison=name, scope=scope, metric=metric, paper_metric=paper_metric,
                    paper_diff=pdiff, config_a=ra, config_b=rb, folds=";".join(map(str, folds)), note=common_note,
                    run_dirs_a=";".join(display_path(r.run_dir) for (f, _), r in found[ra].items() if keep(f)),
                    run_dirs_b=";".join(display_path(r.run_dir) for (f, _), r in found[rb].items() if keep(f)),
                    **context)
        if error is None:
            try:
                r = difference(table, metric, data[ra], data[rb], n_boot, seed)
            except ValueError as e:
                line["verdict"] = f"not computed: {e}"
            else:
                line |= {k: r[k] for k in ("mean_diff", "ci_low", "ci_high", "runs_a", "runs_b",
                                           "seed_variance_included", "wilcoxon_within_run_p", "p_boot",
                                           "n_images", "n_dropped")}
                line |= {"seeds_a": r["runs_per_side"]["a"], "seeds_b": r["runs_per_side"]["b"],
                         "seed_spread_a": r["seed_spread"]["a"], "seed_spread_b": r["seed_spread"]["b"],
                         "verdict": _verdict(metric, paper_metric, r, pdiff)}
        else:
            line["verdict"] = error
        lines.append(line)
    return lines


def compare_table(table, runs, *, profile=None, dataset=None, want=None, n_boot=2000, seed=0,
                  paper_dir=PC.PAPER_DIR) -> pd.DataFrame:
    """One line per (comparison, metric) of ``table`` from the finished ``runs`` (:func:`discover`).

    Only folds that both rows have are paired (``note`` says which were left out); a comparison
    that cannot be computed (no runs, missing per-image file, different case sets) keeps its lines
    with the reason as verdict.  While the second seeds are still landing fold by fold, the CI over
    all folds is within-run only; so when some but not all paired folds have 2+ seeds on both
    sides, the comparison gets a second set of lines, ``scope`` "folds with 2+ seeds", restricted to
    those folds: fewer images, but a CI that includes run-to-run variance.
    """
    task = TABLE_TASK[table]
    runs, profile, dataset = task_runs(runs, task, profile, dataset)
    rows = {r.row_id: r for r in table_rows(table)}
    paper = _paper_diffs(table, paper_dir)
    lines = []
    for name, ra, rb in comparisons(table):
        found = {k: row_runs(rows[k], runs, want) for k in (ra, rb)}
        common = sorted({f for f, _ in found[ra]} & {f for f, _ in found[rb]})
        extra = sorted({f for side in found.values() for f, _ in side} - set(common))
        kw = dict(n_boot=n_boot, seed=seed, context=dict(profile=profile, dataset=dataset),
                  common_note=f"folds {extra} of one side left out" if extra else None)
        lines += _lines(table, name, ra, rb, found, common, SCOPE_ALL, paper, **kw)
        seeded = _seeded_folds(found, common)
        if seeded and seeded != common:
            lines += _lines(table, name, ra, rb, found, seeded, "folds with 2+ seeds", paper, **kw)
    return pd.DataFrame(lines, columns=COLUMNS)


def compare_runs(runs, tables=TABLES + (LADDER,), **kwargs) -> pd.DataFrame:
    """:func:`compare_table` for every table whose task has finished ``runs`` (:func:`discover`)."""
    tasks = {r.summary.get("task") for r in runs}
    frames = [compare_table(t, runs, **kwargs) for t in tables if TABLE_TASK[t] in tasks]
    if not frames:
        log.warning("no finished U-Net run (summary.json) found")
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


MD_COLUMNS = ["comparison", "scope", "metric", "mean_diff", "ci_low", "ci_high", "paper_diff", "verdict", "runs_a",
              "runs_b", "seeds_a", "seeds_b", "seed_spread_a", "seed_spread_b", "wilcoxon_within_run_p", "n_images",
              "note"]
EXPLAIN = ("A - B over all test (Tables II, IV, the ladder) or validation (I, III) images of the folds both rows "
           "have; 95 % CI from a hierarchical bootstrap (images matched by case id, seeds resampled within each fold: "
           "`gan_seg_aug/evaluation/paired_stats.py`). runs = folds x seeds found per side; seeds = fewest seeds "
           "in a fold; seed_spread = std over seeds of a run's mean; with 1 seed per side the CI is within-run "
           "only, so while the second seeds land fold by fold a comparison also gets the scope 'folds with 2+ "
           "seeds': those folds alone, fewer images, a CI with run-to-run variance. wilcoxon_within_run_p: "
           "per-image Wilcoxon on the seed-averaged differences, evidence about these runs, not about the "
           "configurations. The paper's Hausdorff difference is judged only "
           f"against our {PC.HD_FIT or 'nothing'} (docs/hausdorff.md).")


def to_markdown(frame: pd.DataFrame) -> str:
    """``comparisons_stats.md``: the rule, then one section per table."""
    parts = ["# The paper's comparisons with run-to-run noise", "", EXPLAIN, ""]
    if frame.empty:
        return "\n".join(parts + ["No finished runs found.", ""])
    for t, df in frame.groupby("table", sort=False):
        ctx = f"profile {df['profile'].iloc[0]}, {df['dataset'].iloc[0]} data"
        parts += [f"## {PC.TITLES.get(t, LADDER_TITLE)} ({ctx})", "", P.to_markdown(df[MD_COLUMNS]), ""]
    return "\n".join(parts)
