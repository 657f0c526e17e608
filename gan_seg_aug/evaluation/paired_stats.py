"""Paired comparison of two configurations (two rows of the paper's tables) across training runs.

The unit of randomness is the training run, not the test image: two U-Nets of one configuration
that differ only in seed differ by -0.0010 mean Dice with a per-image Wilcoxon p = 0.0006, so a
per-image test between two single runs says something about those two runs, not about the
configurations.  Here the uncertainty comes from a hierarchical bootstrap that also resamples runs.

Rule (used by :func:`paired_difference` and :func:`miou_difference`):

* runs are paired by fold (``run_key[0]``): the same test images.  Folds are the stratification
  and stay fixed, like the 247 SCR test images pooled over the paper's 3 folds;
* within a fold, images are matched by ``case_id`` (never by row order); every run of both sides
  must hold the same cases, else ``ValueError`` naming the fold;
* each side is summarised per fold by the per-case mean over its seeds (for Cityscapes: the mean
  of the per-image confusion matrices), and the statistic is A - B pooled over all folds' images;
* a bootstrap resample draws, in every fold, the seeds of A and the seeds of B with replacement,
  independently (they are different trainings), and the cases with replacement, the same cases
  for both sides (that keeps the pairing).  The CI is the percentile interval.

With one seed per side the run-to-run variance cannot be estimated; the result then says
``seed_variance_included=False`` and the CI is only a per-image (within-run) interval.  With few
seeds the bootstrap underestimates the seed variance (by a factor (S-1)/S), so a CI from 2 seeds
is optimistic; ``seed_spread`` shows the size of the run-to-run spread it rests on.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

VERDICTS = ("same direction, CI excludes 0", "same direction, CI includes 0",
            "opposite direction, CI excludes 0", "opposite direction, CI includes 0",
            "paper reports no difference")


def _by_fold(runs, side):
    folds, seen = {}, set()
    for key, data in runs:
        key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        if key in seen:
            raise ValueError(f"side {side}: run {key} given twice")
        seen.add(key)
        folds.setdefault(key[0], []).append((key, data))
    if not folds:
        raise ValueError(f"side {side}: no runs")
    return folds


def _paired_folds(a_runs, b_runs, table):
    """[(fold, case_ids, A [S_A, n, ...], B [S_B, n, ...])]; ``table(data)`` -> {case_id: value}."""
    fa, fb = _by_fold(a_runs, "A"), _by_fold(b_runs, "B")
    if set(fa) != set(fb):
        raise ValueError(f"folds differ: only in A {sorted(map(repr, set(fa) - set(fb)))}, "
                         f"only in B {sorted(map(repr, set(fb) - set(fa)))}")
    try:
        order = sorted(fa)
    except TypeError:  # mixed fold types: keep A's order, still deterministic
        order = list(fa)
    out = []
    for fold in order:
        tabs = [(s, k, table(d)) for s, runs in (("A", fa[fold]), ("B", fb[fold])) for k, d in runs]
        ref_side, ref_key, ref = tabs[0]
        for s, k, t in tabs[1:]:
            if set(t) != set(ref):
                missing, extra = sorted(set(ref) - set(t)), sorted(set(t) - set(ref))
                raise ValueError(f"fold {fold!r}: case ids of run {s}{k} differ from run {ref_side}"
                                 f"{ref_key}: missing {missing[:5]}, extra {extra[:5]}")
        cases = sorted(ref)
        a, b = ([np.stack([t[c] for c in cases]) if cases else np.zeros(0) for s, _, t in tabs if s == side]
                for side in "AB")
        out.append((fold, cases, np.stack(a).astype(float), np.stack(b).astype(float)))
    return out


def _miou(conf, classes=None):
    """Mean IoU over the last two axes (rows true, columns predicted), over ``classes`` (indices;
    None = all); classes with no true and no predicted pixel are left out of the mean; NaN if no
    class is present."""
    conf = np.asarray(conf, dtype=float)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    denom = conf.sum(-1) + conf.sum(-2) - tp
    if classes is not None:
        tp, denom = tp[..., list(classes)], denom[..., list(classes)]
    iou = np.divide(tp, denom, out=np.full_like(tp, np.nan), where=denom > 0)
    present = (denom > 0).sum(-1)
    return np.divide(np.nansum(iou, -1), present, out=np.full(present.shape, np.nan), where=present > 0)


def _summarise(folds, score, per_case, *, metric, n_boot, seed, ci, n_dropped):
    """Point estimate, hierarchical bootstrap and run-level diagnostics.

    ``score(total, n)`` turns a sum over n cases (of metric values or confusion matrices) into
    the side's statistic; the difference is ``score(A) - score(B)``.
    """
    if n_boot < 1 or not 0 < ci < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < ci < 1, got {n_boot}, {ci}")
    n_total = sum(len(c) for _, c, _, _ in folds)
    if n_total == 0:
        raise ValueError(f"{metric}: no case with finite values on both sides")
    rng = np.random.default_rng(seed)
    tail = folds[0][2].shape[2:]
    point = [np.zeros(tail), np.zeros(tail)]
    boot = [np.zeros((n_boot, *tail)), np.zeros((n_boot, *tail))]
    spread = {"A": [], "B": []}
    for _, cases, *sides in folds:
        n = len(cases)
        # Multinomial counts = resampling with replacement, drawn in a fixed order per fold so a
        # seed reproduces the same resamples.
        w = rng.multinomial(n, np.full(n, 1 / n), size=n_boot) if n else np.zeros((n_boot, 0))
        for i, (name, x) in enumerate(zip("AB", sides)):
            s = x.shape[0]
            v = rng.multinomial(s, np.full(s, 1 / s), size=n_boot) / s
            point[i] += x.mean(0).sum(0)
            boot[i] += np.einsum("bs,bc,sc...->b...", v, w, x, optimize=True)
            if s >= 2 and n:
                spread[name].append(float(np.std([score(r.sum(0), n) for r in x], ddof=1)))
    d = score(boot[0], n_total) - score(boot[1], n_total)
    d = d[np.isfinite(d)]
    lo, hi = np.quantile(d, [(1 - ci) / 2, (1 + ci) / 2])
    p = min(1.0, max(1 / n_boot, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))
    diffs = np.concatenate([per_case(a, b) for _, _, a, b in folds])
    diffs = diffs[np.isfinite(diffs)]
    wil = None if not np.any(diffs != 0) else float(stats.wilcoxon(diffs).pvalue)
    seeds = {"a": min(f[2].shape[0] for f in folds), "b": min(f[3].shape[0] for f in folds)}
    return {"metric": metric, "mean_diff": float(score(point[0], n_total) - score(point[1], n_total)),
            "ci_low": float(lo), "ci_high": float(hi), "p_boot": float(p), "n_images": int(n_total),
            "n_dropped": int(n_dropped), "n_folds": len(folds),
            "runs_a": sum(f[2].shape[0] for f in folds), "runs_b": sum(f[3].shape[0] for f in folds),
            "runs_per_side": seeds, "seed_variance_included": min(seeds.values()) >= 2,
            "seed_spread": {k.lower(): (float(np.mean(v)) if v else None) for k, v in spread.items()},
            "wilcoxon_within_run_p": wil}


def _frame_table(metric):
    def table(df):
        if "case_id" not in df or metric not in df:
            raise ValueError(f"frame needs columns 'case_id' and {metric!r}, has {list(df.columns)}")
        ids = df["case_id"].astype(str)  # a CSV may parse '17' as int on one side only
        if ids.duplicated().any():
            raise ValueError(f"duplicate case ids: {sorted(set(ids[ids.duplicated()]))[:5]}")
        return dict(zip(ids, pd.to_numeric(df[metric], errors="coerce").to_numpy(float)))
    return table


def paired_difference(a_runs, b_runs, metric, *, n_boot=2000, seed=0, ci=0.95) -> dict:
    """A - B in the mean of ``metric`` over all test images of all folds, with a bootstrap CI that
    includes run-to-run variance (module docstring for the pairing/resampling rule).

    ``a_runs``/``b_runs``: lists of ``(run_key, frame)``, ``run_key = (fold, seed, ...)``, frame a
    DataFrame with ``case_id`` and the metric column.  A case with a NaN/inf value in any run of
    either side (e.g. an undefined Hausdorff distance for an empty mask) is dropped from both
    sides, for this metric only; ``n_dropped`` counts the dropped (fold, case) pairs.

    Returns ``mean_diff, ci_low, ci_high, p_boot`` (two-sided, 2 min(P(d<=0), P(d>=0)), clipped
    to [1/n_boot, 1]), ``n_images, n_dropped, n_folds, runs_a, runs_b, runs_per_side`` (fewest
    seeds in a fold, per side), ``seed_variance_included`` (>= 2 seeds in every fold on both
    sides), ``seed_spread`` (per side, std over seeds of the run's mean metric, averaged over
    folds; None with one seed), ``wilcoxon_within_run_p`` (per-image Wilcoxon on the per-case
    differences: within-run evidence only; None if every difference is 0) and ``metric``.

    >>> b = pd.DataFrame({"case_id": ["x", "y", "z"], "dice": [0.90, 0.80, 0.70]})
    >>> a = b.assign(dice=b.dice + 0.01).iloc[::-1]   # row order does not matter
    >>> r = paired_difference([((1, 0), a)], [((1, 0), b)], "dice", n_boot=200)
    >>> round(r["mean_diff"], 4), round(r["ci_low"], 4), r["p_boot"], r["seed_variance_included"]
    (0.01, 0.01, 0.005, False)
    """
    folds, dropped = [], 0
    for fold, cases, a, b in _paired_folds(a_runs, b_runs, _frame_table(metric)):
        ok = np.isfinite(a).all(0) & np.isfinite(b).all(0) if cases else np.zeros(0, bool)
        dropped += int((~ok).sum())
        folds.append((fold, [c for c, k in zip(cases, ok) if k], a[:, ok], b[:, ok]))
    return _summarise(folds, lambda total, n: total / n, lambda a, b: a.mean(0) - b.mean(0),
                      metric=metric, n_boot=n_boot, seed=seed, ci=ci, n_dropped=dropped)


def miou_difference(a_runs, b_runs, *, n_classes, classes=None, metric="miou", n_boot=2000, seed=0,
                    ci=0.95) -> dict:
    """A - B in mIoU (Cityscapes), same rule and output keys as :func:`paired_difference`.

    Each run gives ``{case_id: confusion [n_classes, n_classes]}`` (rows true, columns predicted).
    A side's mIoU is computed from the SUM over the (resampled) images of its seed-averaged
    confusion matrices -- a dataset-level IoU as in cityscapesScripts, recomputed per bootstrap
    resample; classes with no true and no predicted pixel are left out.  All ``n_classes`` count
    as ordinary classes (``miou8`` of :func:`gan_seg_aug.evaluation.metrics.miou_report`);
    ``classes`` (indices) restricts the mean, e.g. to every category but 'human' and 'object' for
    Table IV's second column (paper §V-B); ``metric`` names the result.
    ``wilcoxon_within_run_p`` compares per-image mIoUs.

    >>> eye = np.eye(2, dtype=int) * 2
    >>> a = {"p": eye, "q": eye}
    >>> b = {"p": np.array([[1, 1], [0, 2]]), "q": eye}   # q perfect; p: IoU 3/4, 4/5 pooled
    >>> r = miou_difference([(0, a)], [(0, b)], n_classes=2, n_boot=100)
    >>> round(r["mean_diff"], 6) == round(1 - (3 / 4 + 4 / 5) / 2, 6), r["n_images"]
    (True, 2)
    >>> round(miou_difference([(0, a)], [(0, b)], n_classes=2, classes=[1], n_boot=100)["mean_diff"], 6)
    0.2
    """
    if classes is not None and (not len(classes) or any(not 0 <= int(c) < n_classes for c in classes)):
        raise ValueError(f"classes {list(classes)}: expected indices in 0..{n_classes - 1}")

    def table(conf):
        out = {}
        for c, m in conf.items():
            m = np.asarray(m, dtype=float)
            if m.shape != (n_classes, n_classes) or not np.isfinite(m).all() or (m < 0).any():
                raise ValueError(f"case {c!r}: need a finite non-negative {n_classes}x{n_classes} "
                                 f"confusion matrix, got shape {m.shape}")
            out[str(c)] = m
        return out
    folds = [f if f[1] else (f[0], [], np.zeros((f[2].shape[0], 0, n_classes, n_classes)),
                             np.zeros((f[3].shape[0], 0, n_classes, n_classes)))
             for f in _paired_folds(a_runs, b_runs, table)]
    return _summarise(folds, lambda total, n: _miou(total, classes),
                      lambda a, b: _miou(a.mean(0), classes) - _miou(b.mean(0), classes),
                      metric=metric, n_boot=n_boot, seed=seed, ci=ci, n_dropped=0)


def verdict(ci_low, ci_high, paper_diff) -> str:
    """Our CI against the paper's difference, as one of :data:`VERDICTS`.

    ``paper_diff == 0`` -> "paper reports no difference".  Otherwise the direction is the sign of
    the CI's midpoint against the sign of ``paper_diff`` (a midpoint of exactly 0 is not "same"),
    and the CI excludes 0 when ``ci_low > 0`` or ``ci_high < 0``.

    >>> verdict(0.002, 0.010, 0.004), verdict(-0.001, 0.003, -0.01)
    ('same direction, CI excludes 0', 'opposite direction, CI includes 0')
    >>> verdict(-0.001, 0.003, 0.0)
    'paper reports no difference'
    """
    vals = [float(v) for v in (ci_low, ci_high, paper_diff)]
    if not all(map(math.isfinite, vals)) or vals[0] > vals[1]:
        raise ValueError(f"need finite ci_low <= ci_high and paper_diff, got {vals}")
    lo, hi, paper = vals
    if paper == 0:
        return VERDICTS[4]
    same = (lo + hi) / 2 * paper > 0
    excludes = lo > 0 or hi < 0
    return VERDICTS[(0 if same else 2) + (0 if excludes else 1)]


def compare_configs(table_runs, comparisons, metrics, paper_diffs, **kwargs) -> pd.DataFrame:
    """:func:`paired_difference` for each ``(name, config_a, config_b)`` and metric, one row each.

    ``table_runs[config]`` is that configuration's list of ``(run_key, frame)``; ``paper_diffs``
    maps ``(name, metric)`` to the paper's A - B (missing: ``paper_diff`` and ``verdict``
    empty -- None/NaN in the frame);
    ``kwargs`` go to :func:`paired_difference` (``n_boot``, ``seed``, ``ci``).
    """
    rows = []
    for name, ca, cb in comparisons:
        for metric in metrics:
            r = paired_difference(table_runs[ca], table_runs[cb], metric, **kwargs)
            paper = paper_diffs.get((name, metric))
            rows.append({"comparison": name, "config_a": ca, "config_b": cb, **r, "paper_diff": paper,
                         "verdict": None if paper is None else verdict(r["ci_low"], r["ci_high"], paper)})
    return pd.DataFrame(rows)


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x) or '-'}" for k, x in v.items())
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-markdown table: header, separator, one line per row (floats to 4 significant
    digits, None/NaN empty).

    >>> print(to_markdown(pd.DataFrame({"metric": ["dice"], "mean_diff": [0.012345]})))
    | metric | mean_diff |
    | --- | --- |
    | dice | 0.01235 |
    """
    lines = ["| " + " | ".join(_cell(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
