"""Figures of finished U-Net runs (thesis §5.1.3 / §5.2.3), as functions the notebooks call.

* :func:`category_iou_bars` -- "mIoU for every category [...] for the four best networks" (Fig. 5.9).
* :func:`cases_figure` / :func:`best_worst_figure` -- test cases of a GAN-augmented and a
  standard-augmented network side by side (Figs. 5.4 / 5.5 / 5.11; paper Figs. 3 / 5).
* :func:`ladder_plot` -- the low-data ladder (not in the paper): test Dice against the number of
  training cases, one line per network; :func:`ladder_difference_plot` its paired differences with CIs
  that hold seed noise (from ``comparisons_stats.csv``).

Predictions for those figures come from a run's ``best.weights.h5`` (:func:`load_unet`,
:func:`predict_case`) at the network's training resolution; the paper's metrics are computed at
native resolution by ``gan_seg_aug.evaluation.segmentation`` -- the figures only illustrate.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gan_seg_aug.artifacts import read_json
from gan_seg_aug.config import CITYSCAPES_CATEGORIES, get_profile, task_spec
from gan_seg_aug.reporting.table_builder import resolve_run_dir
from gan_seg_aug.reporting.viz import colourise, draw_image, figure, to_display


def category_iou_bars(table_iv: pd.DataFrame, top: int = 4):
    """Fig. 5.9: per-category IoU of the ``top`` networks by mIoU (rows with status ok)."""
    cols = [f"iou_{c}" for c in CITYSCAPES_CATEGORIES]
    ok = table_iv[table_iv["status"] == "ok"].dropna(subset=["miou8"]) if "status" in table_iv else table_iv
    best = ok.sort_values("miou8", ascending=False).head(top)
    if best.empty:
        raise ValueError("no finished Table IV rows to plot: run experiments/tables.py --table IV first")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(CITYSCAPES_CATEGORIES))
    width = 0.8 / len(best)
    for k, row in enumerate(best.itertuples()):
        vals = [getattr(row, c) if c in best.columns else np.nan for c in cols]
        ax.bar(x + (k - (len(best) - 1) / 2) * width, vals, width, label=f"{row.network_id} ({row.miou8:.3f})")
    ax.set_xticks(x, CITYSCAPES_CATEGORIES, fontsize=8)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.legend(fontsize=7, ncols=min(4, len(best)))
    return fig


def ladder_points(table: pd.DataFrame) -> pd.DataFrame:
    """The ladder's finished rows with a 95 % CI of the mean test Dice over the test images
    (t interval; one run per point, so seed-to-seed noise is NOT in it).  ``all`` training cases
    is placed at the ``n_train`` of any ``all`` row that records it (they share one training set; older
    summaries lack it), else at the largest subset's size times 2.

    >>> t = pd.DataFrame({"network_id": ["16-0-NoAug"] * 2, "train_cases": ["9", "all"],
    ...                   "dice_mean": [0.90, 0.97], "dice_std": [0.05, 0.02], "n_test": [83, 83],
    ...                   "status": ["ok", "ok"]})
    >>> ladder_points(t)[["cases", "dice_mean", "ci_low"]].round(4).to_dict("list")
    {'cases': [9, 18], 'dice_mean': [0.9, 0.97], 'ci_low': [0.8891, 0.9656]}
    >>> t2 = pd.concat([t, t.assign(network_id="16-0-Aug")], ignore_index=True).assign(n_train=[9, 134, 9, None])
    >>> ladder_points(t2)[["network_id", "cases"]].to_dict("list")
    {'network_id': ['16-0-Aug', '16-0-Aug', '16-0-NoAug', '16-0-NoAug'], 'cases': [9, 134, 9, 134]}
    """
    from scipy import stats

    ok = table[table["status"] == "ok"].copy() if "status" in table else table.copy()
    if ok.empty:
        raise ValueError("no finished ladder rows to plot: run experiments/tables.py --table ladder first")
    n = pd.to_numeric(ok["train_cases"], errors="coerce")
    full = pd.to_numeric(ok.get("n_train", pd.Series(np.nan, index=ok.index)), errors="coerce")
    full = full.fillna(full[n.isna()].max())  # an "all" row without n_train takes that of one with it
    n = n.fillna(full).fillna(2 * n.max() if n.notna().any() else 1)
    half = stats.t.ppf(0.975, ok["n_test"] - 1) * ok["dice_std"] / np.sqrt(ok["n_test"])
    return ok.assign(cases=n.astype(int), ci_low=ok["dice_mean"] - half,
                     ci_high=ok["dice_mean"] + half).sort_values(["network_id", "cases"])


def ladder_plot(table: pd.DataFrame):
    """Test Dice (95 % CI over test images) against training cases, log axis, one line per network."""
    pts = ladder_points(table)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for net, g in pts.groupby("network_id", sort=True):
        ax.errorbar(g["cases"], g["dice_mean"], yerr=[g["dice_mean"] - g["ci_low"], g["ci_high"] - g["dice_mean"]],
                    marker="o", capsize=3, label=net)
    ax.set_xscale("log")
    ticks = sorted(pts["cases"].unique())
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("training cases (SCR fold 1, nested subsets)")
    ax.set_ylabel("test Dice (95 % CI over images)")
    ax.legend(fontsize=8)
    return fig


def ladder_differences(stats: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """The ladder's paired differences from ``comparisons_stats.csv`` (:mod:`.run_statistics`) that were computed:
    ``question`` (the comparison without its size), ``cases`` (``"all"`` for the whole training set), ``mean_diff``,
    ``ci_low``, ``ci_high``, ``runs_a``, ``runs_b`` and ``seed_variance_included``, ordered by size.

    >>> from gan_seg_aug.reporting.run_statistics import SCOPE_ALL
    >>> s = pd.DataFrame({"table": "ladder", "scope": SCOPE_ALL, "metric": "dice",
    ...                   "comparison": ["8-8-NoAug vs 16-0-NoAug, all training cases",
    ...                                  "8-8-NoAug vs 16-0-NoAug, 9 training cases"],
    ...                   "mean_diff": [-0.003, 0.001], "ci_low": [-0.005, -0.004], "ci_high": [-0.001, 0.005],
    ...                   "runs_a": 2, "runs_b": 3, "seed_variance_included": True})
    >>> ladder_differences(s)[["question", "cases", "mean_diff"]].values.tolist()
    [['8-8-NoAug − 16-0-NoAug', '9', 0.001], ['8-8-NoAug − 16-0-NoAug', 'all', -0.003]]
    """
    from gan_seg_aug.reporting.run_statistics import SCOPE_ALL, ladder_comparisons

    sizes = {name: (str(n) if n else "all", k, question)
             for k, (name, _, _, n, question) in enumerate(ladder_comparisons())}
    lines = stats[(stats["metric"] == metric) & (stats["scope"] == SCOPE_ALL) & stats["comparison"].isin(sizes)
                  & stats["mean_diff"].notna()]
    if lines.empty:
        raise ValueError("no computed ladder comparison: run experiments/compare.py RESULTS --runs-dir RUNS "
                         "after the ladder's runs have landed")
    info = pd.DataFrame([sizes[c] for c in lines["comparison"]], columns=["cases", "order", "question"],
                        index=lines.index)
    keep = ["mean_diff", "ci_low", "ci_high", "runs_a", "runs_b", "seed_variance_included"]
    return pd.concat([info, lines[keep]], axis=1).sort_values("order").drop(columns="order").reset_index(drop=True)


def ladder_difference_plot(stats: pd.DataFrame, metric: str = "dice"):
    """The ladder's two questions against training cases: each paired difference with its 95 % CI over runs
    and images (hollow where one side has a single run, so the CI is within-run), runs per side beside it."""
    d = ladder_differences(stats, metric)
    from matplotlib.figure import Figure

    sizes = list(dict.fromkeys(d["cases"]))
    fig = Figure(figsize=(6.5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0, color="grey", lw=0.8)
    questions = list(dict.fromkeys(d["question"]))
    for k, (q, g) in enumerate(d.groupby("question", sort=False)):
        x = np.array([sizes.index(c) for c in g["cases"]]) + (k - (len(questions) - 1) / 2) * 0.12
        err = [g["mean_diff"] - g["ci_low"], g["ci_high"] - g["mean_diff"]]
        colour = f"C{k}"
        ax.errorbar(x, g["mean_diff"], yerr=err, fmt="none", capsize=3, color=colour, label=q)
        seeded = g["seed_variance_included"].astype(bool).to_numpy()
        ax.scatter(x[seeded], g["mean_diff"][seeded], color=colour, zorder=3)
        ax.scatter(x[~seeded], g["mean_diff"][~seeded], facecolors="white", edgecolors=colour, zorder=3)
        for xi, (_, r) in zip(x, g.iterrows()):
            ax.annotate(f"{int(r.runs_a)}/{int(r.runs_b)}", (xi, r.ci_high), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_xlabel("training cases (SCR fold 1, nested subsets); n/m = runs per side")
    ax.set_ylabel(f"test {'Dice' if metric == 'dice' else metric} difference (95 % CI)")
    ax.set_title("hollow: a single run on one side, so the CI is within-run", fontsize=8)
    ax.legend(fontsize=8)
    return fig


@functools.lru_cache(maxsize=4)
def default_results_dir(root) -> Path:
    """The results a fresh clone can show: ``results/`` if a sweep wrote tables there, else the
    committed real-data tables (``results/cpu_real``, then ``results/cpu_jsrt_sample``)."""
    root = Path(root) / "results"
    for d in (root, root / "cpu_real", root / "cpu_jsrt_sample"):
        if any(d.glob("table_*.csv")):
            return d
    return root


def _task_data(task: str, data_dir, max_cases: int, height: int, width: int):
    from gan_seg_aug.data.loaders import load_task

    data = load_task(task, data_dir, allow_partial=True, max_cases=max_cases)
    return data.resized(height, width)


def _run_config(run_dir: Path) -> dict:
    rec = read_json(run_dir / "config.json")
    cfg = rec.get("config", rec)
    for key in ("task", "profile", "height", "width", "unet_width_div"):
        if key not in cfg:
            raise ValueError(f"{run_dir / 'config.json'}: not a U-Net run config (no {key!r})")
    # the data directory is recorded in summary.json (config.json is written before the data is known)
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    return {**cfg, "dataset": rec.get("dataset") or summary.get("dataset"),
            "data_dir": rec.get("data_dir") or summary.get("data_dir")}


def load_unet(run_dir):
    """A finished U-Net run's network (``unet_trainer.load_unet``) and its settings."""
    from gan_seg_aug.training.unet_trainer import load_unet as load

    cfg = _run_config(Path(run_dir))
    return load(run_dir), cfg


def run_data(cfg: dict):
    """The run's dataset at its training resolution.  Real data is found via ``data_dir`` in the
    run's config, else ``$GAN_SEG_AUG_DATA_DIR_SCR`` / ``$GAN_SEG_AUG_DATA_DIR_CITYSCAPES``."""
    task = cfg["task"]
    data_dir = None
    if cfg.get("dataset") == "real":
        var = "GAN_SEG_AUG_DATA_DIR_" + ("SCR" if task == "scr_lung" else "CITYSCAPES")
        data_dir = cfg.get("data_dir") or os.environ.get(var)
        if not data_dir:
            raise FileNotFoundError(f"this {task} run used real data: set ${var} to its data directory")
    return _task_data(task, data_dir, get_profile(cfg["profile"]).max_cases, cfg["height"], cfg["width"])


def predict_case(model, cfg: dict, case_id: str) -> dict:
    """Image, ground truth and prediction (argmax; SCR: largest component, §4.2) of one case."""
    from gan_seg_aug.evaluation.metrics import largest_component

    data = run_data(cfg)
    i = int(data.indices([case_id])[0])
    logits = np.asarray(model(data.images[i:i + 1], training=False))[0]
    pred = logits.argmax(-1).astype(np.uint8)
    if cfg["task"] == "scr_lung":
        pred = largest_component(pred).astype(np.uint8)
    return {"image": data.images[i], "truth": data.labels[i], "pred": pred}


def cases_figure(rows: list[dict], names: list[str], n_classes: int):
    """Figs. 5.4 / 5.5 / 5.11: image, ground truth, each network's mask, then each network's errors
    (red: predicted but wrong, blue: missed -- SCR; red: wrong category -- Cityscapes)."""
    aspect = rows[0]["truth"].shape[0] / rows[0]["truth"].shape[1]
    fig, axes = figure(len(rows), 2 + 2 * len(names), size=1.8, aspect=aspect)
    for r, row in enumerate(rows):
        draw_image(axes[r, 0], to_display(row["image"]), row.get("caption"))
        axes[r, 1].imshow(colourise(row["truth"], n_classes), interpolation="nearest")
        for k, name in enumerate(names):
            pred, truth = row["preds"][name], row["truth"]
            axes[r, 2 + k].imshow(colourise(pred, n_classes), interpolation="nearest")
            err = np.zeros(truth.shape + (3,), np.uint8)
            if n_classes == 2:
                err[(pred > 0) & (truth == 0)] = (220, 30, 30)
                err[(pred == 0) & (truth > 0)] = (30, 60, 220)
            else:
                err[pred != truth] = (220, 30, 30)
            axes[r, 2 + len(names) + k].imshow(err, interpolation="nearest")
            if r == 0:
                axes[r, 2 + k].set_title(name, fontsize=8)
                axes[r, 2 + len(names) + k].set_title(f"{name} errors", fontsize=8)
        if r == 0:
            axes[r, 1].set_title("ground truth", fontsize=8)
    return fig


def per_image_metrics(run_dirs) -> pd.DataFrame:
    """Test metrics of one network over its folds, with the run directory of each case."""
    frames = []
    for d in run_dirs:
        d = Path(d)
        df = pd.read_csv(d / "metrics_per_image.csv")
        frames.append(df.assign(run_dir=str(d)))
    return pd.concat(frames, ignore_index=True)


def pick_cases(a: pd.DataFrame, b: pd.DataFrame, metric: str, n_best: int = 2, n_worst: int = 1) -> pd.DataFrame:
    """Best and worst test cases by the mean of two networks' ``metric`` (higher is better).

    >>> a = pd.DataFrame({"case_id": ["x", "y", "z"], "dice": [0.9, 0.5, 0.7]})
    >>> pick_cases(a, a, "dice", 1, 1)["case_id"].tolist()
    ['x', 'y']
    """
    m = a.merge(b, on="case_id", suffixes=("_a", "_b"))
    m["score"] = (m[f"{metric}_a"] + m[f"{metric}_b"]) / 2
    m = m.sort_values("score", ascending=False, kind="stable")
    best, worst = m.head(n_best), m.tail(n_worst) if n_worst else m.iloc[:0]
    return pd.concat([best.assign(kind="best"), worst.iloc[::-1].assign(kind="worst")]).drop_duplicates("case_id")


def best_worst_figure(table_csv, net_a: str, net_b: str, metric: str, n_best: int = 2, n_worst: int = 1):
    """Test cases of two networks of a results table (e.g. ``8-8-NoAug`` vs ``16-0-Aug``)."""
    table = pd.read_csv(table_csv)
    dirs = {}
    for net in (net_a, net_b):
        row = table[(table["row_id"] == net) & (table["status"].isin(["ok", "partial"]))]
        if row.empty:
            raise ValueError(f"{table_csv}: no finished run of {net}: run experiments/tables.py first")
        dirs[net] = [resolve_run_dir(p) for p in str(row["run_dir"].iloc[0]).split(";")]
    a, b = per_image_metrics(dirs[net_a]), per_image_metrics(dirs[net_b])
    picked = pick_cases(a, b, metric, n_best, n_worst)
    models = {}
    rows = []
    for case in picked.itertuples():
        row = {"preds": {}, "caption": f"{case.kind}: {case.case_id}"}
        for net, run_dir in ((net_a, case.run_dir_a), (net_b, case.run_dir_b)):
            if run_dir not in models:
                models[run_dir] = load_unet(run_dir)
            model, cfg = models[run_dir]
            out = predict_case(model, cfg, case.case_id)
            row.update(image=out["image"], truth=out["truth"])
            row["preds"][net] = out["pred"]
        rows.append(row)
    n_classes = task_spec(next(iter(models.values()))[1]["task"]).n_classes
    return cases_figure(rows, [net_a, net_b], n_classes), picked
