"""Figures of the thesis' chapter 5, as functions the notebooks call (matplotlib, Agg, no pyplot state).

* :func:`pair_grid` -- generated image+mask pairs, "Odd columns show generated images, while even
  columns show the respective generated segmentation masks" (thesis Figs. 5.3 / 5.10; paper Fig. 2).
* :func:`raw_vs_thresholded` -- "Raw segmentation image sampled from the GAN in the intensity range
  of [-1, 1]" next to the mask "after thresholding" (Figs. 5.2 / 5.8).
* :func:`latent_interpolation` -- pairs along a straight line between two latent vectors.
* :func:`category_iou_bars` -- "mIoU for every category [...] for the four best networks" (Fig. 5.9).
* :func:`cases_figure` / :func:`best_worst_figure` -- test cases of a GAN-augmented and a
  standard-augmented network side by side (Figs. 5.4 / 5.5 / 5.11; paper Figs. 3 / 5).

Predictions for those figures come from a run's ``best.weights.h5`` (:func:`load_unet`,
:func:`predict_case`) at the network's training resolution; the paper's metrics are computed at
native resolution by ``gan_seg_aug.evaluate`` -- the figures only illustrate.
"""
from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import read_json
from .config import CITYSCAPES_CATEGORIES, get_profile, task_spec
from .encoding import decode_mask
from .tables import resolve_run_dir

# Category colours: the Cityscapes colour of each category's most typical class (road, building,
# pole, vegetation, sky, person, car); void black.
CITYSCAPES_COLOURS = np.array([(0, 0, 0), (128, 64, 128), (70, 70, 70), (153, 153, 153), (107, 142, 35),
                               (70, 130, 180), (220, 20, 60), (0, 0, 142)], dtype=np.uint8)


def figure(rows: int, cols: int, size: float = 2.0, aspect: float = 1.0):
    """A pyplot-free Figure (renders with Agg) and its axes grid, ticks off; ``aspect`` = image H / W."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * size, rows * size * aspect + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def show(fig, save_as=None):
    """Display a figure in a notebook as PNG (works headless) and optionally save it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    if save_as:
        Path(save_as).parent.mkdir(parents=True, exist_ok=True)
        Path(save_as).write_bytes(buf.getvalue())
    try:
        from IPython.display import Image, display

        display(Image(data=buf.getvalue()))
    except ImportError:  # plain Python: saving is all we can do
        pass
    return buf.getvalue()


def to_display(image) -> np.ndarray:
    """[-1, 1] image ``[H, W, C]`` -> [0, 1] (grey images as ``[H, W]``)."""
    x = np.clip((np.asarray(image, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    return x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x


def colourise(labels, n_classes: int) -> np.ndarray:
    """Label map -> RGB uint8: SCR black / white, Cityscapes the category colours.

    >>> colourise(np.array([[0, 1]]), 2).tolist()
    [[[0, 0, 0], [255, 255, 255]]]
    """
    labels = np.asarray(labels).astype(np.int64)
    palette = CITYSCAPES_COLOURS if n_classes == 8 else (np.linspace(0, 255, n_classes)[:, None] * np.ones(3)).astype(
        np.uint8)
    return palette[np.clip(labels, 0, n_classes - 1)]


def _imshow(ax, img, title=None):
    img = np.asarray(img)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1 if img.dtype != np.uint8 else 255,
              interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=8)


# --------------------------------------------------------------------------- GAN samples

def interpolate_latents(z0, z1, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from ``z0`` to ``z1`` (both ends included).

    >>> interpolate_latents(np.zeros(2), np.ones(2), 3).tolist()
    [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * np.asarray(z0, np.float64)[None] + t * np.asarray(z1, np.float64)[None]).astype(np.float32)


def generate(generator, z) -> tuple[np.ndarray, np.ndarray]:
    """Run the pair generator on latents ``z [N, d]``: (images ``[N, H, W, C]``, raw masks ``[N, H, W]``)."""
    out = np.asarray(generator(np.asarray(z, np.float32), training=False), dtype=np.float32)
    return out[..., :-1], out[..., -1]


def sample_pairs(generator, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs from ``z ~ N(0, 1)`` (thesis Table 4.1), reproducible by ``seed``."""
    latent_dim = int(generator.input_shape[-1])
    return generate(generator, np.random.default_rng(seed).standard_normal((n, latent_dim)))


def pair_grid(images, raw_masks, n_classes: int, pairs_per_row: int = 4, title=None):
    """Figs. 5.3 / 5.10: odd columns generated images, even columns their (thresholded) masks."""
    images = np.asarray(images)
    n = len(images)
    rows = max(1, -(-n // pairs_per_row))
    fig, axes = figure(rows, 2 * pairs_per_row, size=1.6, aspect=images.shape[1] / images.shape[2])
    for i in range(rows * pairs_per_row):
        r, c = divmod(i, pairs_per_row)
        ax_img, ax_mask = axes[r, 2 * c], axes[r, 2 * c + 1]
        if i >= n:
            ax_img.axis("off")
            ax_mask.axis("off")
            continue
        _imshow(ax_img, to_display(images[i]))
        ax_mask.imshow(colourise(decode_mask(raw_masks[i], n_classes), n_classes), interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def raw_vs_thresholded(raw_mask, n_classes: int, image=None):
    """Figs. 5.2 / 5.8: the generator's mask channel in [-1, 1] and the decoded label map."""
    cols = 3 if image is not None else 2
    fig, axes = figure(1, cols, size=2.6)
    ax = axes[0]
    if image is not None:
        _imshow(ax[0], to_display(image), "generated image")
    im = ax[cols - 2].imshow(np.asarray(raw_mask), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax[cols - 2].set_title("raw mask channel [-1, 1]", fontsize=8)
    fig.colorbar(im, ax=ax[cols - 2], fraction=0.046)
    rule = "threshold at 0" if n_classes == 2 else f"nearest of {n_classes} levels"
    ax[cols - 1].imshow(colourise(decode_mask(raw_mask, n_classes), n_classes), interpolation="nearest")
    ax[cols - 1].set_title(f"thresholded ({rule})", fontsize=8)
    return fig


def latent_interpolation(generator, n_classes: int, steps: int = 8, seed: int = 0):
    """Image row and mask row along a line between two random latent vectors."""
    latent_dim = int(generator.input_shape[-1])
    z0, z1 = np.random.default_rng(seed).standard_normal((2, latent_dim))
    images, masks = generate(generator, interpolate_latents(z0, z1, steps))
    fig, axes = figure(2, steps, size=1.4, aspect=images.shape[1] / images.shape[2])
    for i in range(steps):
        _imshow(axes[0, i], to_display(images[i]), f"t={i / (steps - 1):.2f}")
        axes[1, i].imshow(colourise(decode_mask(masks[i], n_classes), n_classes), interpolation="nearest")
    return fig


def newest_gan_dir(runs_dir) -> Path | None:
    """The most recently finished GAN run (``gan/done.json``) under ``runs_dir``, or None."""
    done = sorted(Path(runs_dir).glob("*/*/*/fold*/gan/done.json"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent if done else None


# --------------------------------------------------------------------------- results figures

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


@functools.lru_cache(maxsize=4)
def _task_data(task: str, data_dir, max_cases: int, height: int, width: int):
    from .data.loaders import load_task

    data = load_task(task, data_dir, allow_partial=True, max_cases=max_cases, log=lambda *_: None)
    return data.resized(height, width)


def _run_config(run_dir: Path) -> dict:
    rec = read_json(run_dir / "config.json")
    cfg = rec.get("config", rec)
    for key in ("task", "profile", "height", "width", "unet_width_div"):
        if key not in cfg:
            raise ValueError(f"{run_dir / 'config.json'}: not a U-Net run config (no {key!r})")
    return {**cfg, "dataset": rec.get("dataset"), "data_dir": rec.get("data_dir")}


def load_unet(run_dir):
    """Rebuild a finished U-Net run's network from ``config.json`` and load ``best.weights.h5``."""
    from .models import build_unet

    run_dir = Path(run_dir)
    weights = run_dir / "best.weights.h5"
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: not found (is {run_dir} a finished U-Net run?)")
    cfg = _run_config(run_dir)
    model = build_unet(cfg["task"], height=cfg["height"], width=cfg["width"], width_div=cfg["unet_width_div"])
    model.load_weights(str(weights))
    return model, cfg


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
    from .evaluate import largest_component

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
        _imshow(axes[r, 0], to_display(row["image"]), row.get("caption"))
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
