"""Mixed rows against real-only rows at equal real pairs seen (not in the paper; a reading of issue 14's tables).

A mixed U-Net (8-8, 4-4) draws half its minibatch from the generator, so per step it sees half the real pairs of its
real-only row (16-0, 8-0; thesis §4.2: "we use different ratios of real and generated data", Tables 5.2 / 5.4).  The
thesis' stopping rule counts steps ("We only stop the training when 3000 iterations have passed since the last
validation loss minimum was found", §4.2; the cpu profile scales 3000 to 600), so a test score compares runs that
saw different numbers of real pairs as well as different mixes.  Two references separate the two:

* the **full-batch** real-only row (16-0, 8-0, the paper's own reference), read after as many real pairs as the
  mixed run had seen at its best iteration -- the mixed run has then taken twice the steps, so this reading
  cannot tell generated pairs from extra steps;
* the **half-batch** real-only control (8-0 for SCR, 4-0 for Cityscapes; not in the paper): the mixed run's real
  half alone, same steps and same real pairs, so the difference is the generated pairs and nothing else.

Each line sets the mixed run's best validation loss (what the rule watches) against the reference's lowest
validation loss after the same real pairs: near 0, the generated pairs added little; negative, they helped;
positive, they hurt.  Lines are per pair of runs, without a CI: a reading of validation curves.  The half-batch
control also gets a paired test-score comparison with the bootstrap of :mod:`.run_statistics`.
"""
from __future__ import annotations

import logging
import math

import pandas as pd

from gan_seg_aug.evaluation.paired_stats import to_markdown as markdown_table
from gan_seg_aug.reporting.run_catalogue import LADDER, TABLE_TASK, RunSpec, TableRow, ladder_row_id, table_rows
from gan_seg_aug.reporting.run_statistics import (METRICS, comparisons, difference, per_image_table, row_runs,
                                                  task_runs)
from gan_seg_aug.reporting.table_builder import display_path

log = logging.getLogger(__name__)

TABLES = ("II", "IV", LADDER)  # the tables with a mixed row and its real-only row
FULL, HALF = "full-batch real-only", "half-batch real-only"
COLUMNS = ["table", "comparison", "reference", "reference_row", "fold", "seed_a", "seed_ref", "best_val_loss_a",
           "best_iteration_a", "real_pairs_at_best_a", "real_pairs_at_end_a", "val_loss_ref_at_same_real_pairs",
           "ref_reached_them", "real_pairs_at_end_ref", "diff", "profile", "dataset", "run_dir_a", "run_dir_ref"]
TEST_COLUMNS = ["table", "comparison", "folds", "metric", "mean_diff", "ci_low", "ci_high", "p_boot", "runs_a", "runs_b",
                "seed_variance_included", "n_images", "profile", "dataset"]


def lowest_up_to(history: pd.DataFrame, iteration: float) -> float:
    """The lowest validation loss at or before ``iteration``; NaN when nothing was validated by then.

    >>> h = pd.DataFrame({"iteration": [50, 100, 150], "val_loss": [0.9, 0.7, 0.8]})
    >>> lowest_up_to(h, 150), lowest_up_to(h, 99.5)
    (0.7, 0.9)
    >>> math.isnan(lowest_up_to(h, 10))
    True
    """
    seen = history.loc[history["iteration"] <= iteration, "val_loss"]
    return float(seen.min()) if len(seen) else math.nan


def _history(run) -> pd.DataFrame:
    path = run.run_dir / "history.csv"
    if not path.exists():
        raise ValueError(f"{path}: training curve missing (the run predates history.csv, or was copied without it)")
    h = pd.read_csv(path)
    if not {"iteration", "val_loss"} <= set(h.columns):
        raise ValueError(f"{path}: expected columns iteration and val_loss, found {list(h.columns)}")
    return h.dropna(subset=["val_loss"])


def half_batch_row(row: TableRow) -> TableRow:
    """The control of a mixed row: its real half alone, per fold (8-8-NoAug -> 8-0-NoAug).

    >>> row = [r for r in table_rows("IV") if r.row_id == "4-4-Aug"][0]
    >>> half_batch_row(row).row_id, half_batch_row(row).runs[0].run_name
    ('4-0-Aug', '4-0-Aug')
    >>> half_batch_row(table_rows("ladder")[2]).row_id
    '8-0-NoAug_train9'
    """
    runs = tuple(RunSpec(s.task, s.fold, s.n_real, 0, s.aug, s.train_cases) for s in row.runs)
    row_id = runs[0].network_id
    if row.table == LADDER:
        row_id = ladder_row_id(row_id, runs[0].train_cases)
    return TableRow(row.table, row_id, runs, row.aug)


def mixed_rows(table) -> list[tuple[str, TableRow, TableRow]]:
    """``(name, mixed row, full-batch real-only row)`` of the comparisons ``table`` draws between them."""
    rows = {r.row_id: r for r in table_rows(table)}
    out = []
    for name, a, b in comparisons(table):
        sa, sb = rows[a].runs[0], rows[b].runs[0]
        if sa.n_real and sa.n_generated and sb.n_real and not sb.n_generated:
            out.append((name, rows[a], rows[b]))
    return out


def _curves(found) -> dict:
    """``{(fold, seed): (run, history)}``; a run without a readable curve is left out with a warning, so one
    old or partly copied run does not hide the others."""
    out = {}
    for key, run in sorted(found.items()):
        try:
            out[key] = (run, _history(run))
        except ValueError as e:
            log.warning(f"equal-real-pairs reading skips {e}")
    return out


def _lines(table, name, ref_kind, curves_a, curves_ref, context) -> list:
    """One line per (mixed run, reference run of the same fold); ``curves_*`` as :func:`_curves` returns them."""
    lines = []
    for (fold, seed_a), (ra, ha) in curves_a.items():
        best, na = int(ra.summary["best_iteration"]), int(ra.summary["n_real"])
        loss_a = lowest_up_to(ha, best)
        for (fold_r, seed_r), (rr, hr) in curves_ref.items():
            if fold_r != fold:
                continue
            nr = int(rr.summary["n_real"])
            loss_r = lowest_up_to(hr, best * na / nr)
            lines.append([table, name, ref_kind, rr.summary["network_id"], fold, seed_a, seed_r, loss_a, best,
                          best * na, int(ra.summary["unet_iterations"]) * na, loss_r,
                          bool(hr["iteration"].max() * nr >= best * na), int(rr.summary["unet_iterations"]) * nr,
                          loss_a - loss_r, context["profile"], context["dataset"], display_path(ra.run_dir),
                          display_path(rr.run_dir)])
    return lines


def _test_line(table, name, found_a, found_c, context, n_boot, seed) -> dict | None:
    folds = sorted({f for f, _ in found_a} & {f for f, _ in found_c})
    if not folds:
        return None
    metric = METRICS[table][0][0]  # dice / miou8: the table's headline score
    try:
        data = [[(k, per_image_table(r, table)) for k, r in sorted(side.items()) if k[0] in folds]
                for side in (found_a, found_c)]
        r = difference(table, metric, *data, n_boot, seed)
    except ValueError as e:  # as for the curves: one unreadable run must not stop compare.py
        log.warning(f"{name}: test-score difference not computed: {e}")
        return None
    return {"table": table, "comparison": name, "folds": ";".join(map(str, folds)), "metric": metric, **context,
            **{k: r[k] for k in TEST_COLUMNS if k in r}}


def table_lines(table, runs, *, profile=None, dataset=None, want=None, n_boot=2000, seed=0):
    """``(validation lines, test lines)`` of ``table`` from the finished ``runs`` (:func:`.run_statistics.discover`)."""
    runs, profile, dataset = task_runs(runs, TABLE_TASK[table], profile, dataset)
    context = dict(profile=profile, dataset=dataset)
    lines, tests = [], []
    for name, row_a, row_b in mixed_rows(table):
        half = half_batch_row(row_a)
        control = f"{row_a.row_id} vs {half.row_id}"
        found_a, found_c = row_runs(row_a, runs, want), row_runs(half, runs, want)
        curves_a = _curves(found_a)  # read once, set against both references
        lines += _lines(table, name, FULL, curves_a, _curves(row_runs(row_b, runs, want)), context)
        lines += _lines(table, control, HALF, curves_a, _curves(found_c), context)
        t = _test_line(table, control, found_a, found_c, context, n_boot, seed)
        tests += [t] if t else []
    return pd.DataFrame(lines, columns=COLUMNS), pd.DataFrame(tests, columns=TEST_COLUMNS)


def all_lines(runs, tables=TABLES, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`table_lines` for every table whose task has finished ``runs``, concatenated."""
    tasks = {r.summary.get("task") for r in runs}
    parts = [table_lines(t, runs, **kwargs) for t in tables if TABLE_TASK[t] in tasks]

    def concat(i, columns):
        frames = [p[i] for p in parts if len(p[i])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    return concat(0, COLUMNS), concat(1, TEST_COLUMNS)


EXPLAIN = (f"Each line: a mixed run A (8-8, 4-4) and a real-only reference run of the same fold, either the "
           f"{FULL} row (16-0, 8-0; A has then taken twice its steps) or the {HALF} control (8-0, 4-0: A's real "
           "half alone, same steps, so only the generated pairs differ). diff = A's best validation loss − the "
           "reference's lowest validation loss after as many real pairs as A had seen at its best iteration (real "
           "pairs = iterations × real pairs per minibatch). Near 0: the generated pairs added little; negative: "
           "they helped; positive: they hurt. ref_reached_them is False when the reference stopped before seeing "
           "that many real pairs (its lowest loss overall is used). Per pair of runs, no CI: a reading of the "
           "validation curves (`gan_seg_aug/reporting/real_pairs.py`).")
MD_COLUMNS = ["comparison", "reference_row", "fold", "seed_a", "seed_ref", "best_val_loss_a", "real_pairs_at_best_a",
              "val_loss_ref_at_same_real_pairs", "diff", "ref_reached_them", "real_pairs_at_end_a",
              "real_pairs_at_end_ref"]


def summary(lines: pd.DataFrame) -> pd.DataFrame:
    """Per (table, comparison, reference): how many run pairs, mixed and reference runs, and the spread of ``diff``.

    >>> lines = pd.DataFrame({"table": "II", "comparison": "8-8-NoAug vs 16-0-NoAug", "reference": FULL,
    ...                       "seed_a": [0, 0, 1], "seed_ref": [0, 1, 0], "fold": 1, "diff": [-0.2, 0.1, -0.1]})
    >>> row = summary(lines).to_dict("records")[0]
    >>> [row[k] for k in ("run_pairs", "runs_a", "runs_ref", "median_diff", "share_below_0")]
    [3, 2, 2, -0.1, 0.6667]
    """
    rows = []
    for (t, c, r), df in lines.groupby(["table", "comparison", "reference"], sort=False):
        d = df["diff"].dropna()  # empty -> NaN below, from pandas itself
        rows.append({"table": t, "comparison": c, "reference": r, "run_pairs": len(df),
                     "runs_a": len(df[["fold", "seed_a"]].drop_duplicates()),
                     "runs_ref": len(df[["fold", "seed_ref"]].drop_duplicates()),
                     "median_diff": float(d.median()), "min_diff": float(d.min()), "max_diff": float(d.max()),
                     "share_below_0": round(float((d < 0).mean()), 4)})
    return pd.DataFrame(rows)


def to_markdown(lines: pd.DataFrame, tests: pd.DataFrame) -> str:
    """``comparisons_real_pairs.md``: the reading, its summary, the half-batch test scores, the lines per table."""
    parts = ["# Mixed against real-only runs at equal real pairs seen", "", EXPLAIN, ""]
    if len(lines):
        parts += ["## Validation loss, summed up per comparison (diff = mixed − reference)", "",
                  markdown_table(summary(lines)), ""]
    if len(tests):
        parts += ["## Test score: mixed run against its half-batch control (hierarchical bootstrap, 95 % CI)", "",
                  markdown_table(tests.drop(columns=["profile", "dataset"])), ""]
    if lines.empty:
        return "\n".join(parts + ["No pair of finished mixed and real-only runs found.", ""])
    for t, df in lines.groupby("table", sort=False):
        title = "Low-data ladder" if t == LADDER else f"Table {t}"
        parts += [f"## {title}: validation loss (profile {df['profile'].iloc[0]}, {df['dataset'].iloc[0]} data)",
                  "", markdown_table(df[MD_COLUMNS]), ""]
    return "\n".join(parts)
