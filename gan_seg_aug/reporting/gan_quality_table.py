"""One table of every GAN of a fold: critic variant x sampling mode, with its training health, speed and
quality report (docs/decisions.md §3; committed as ``results/gan_quality/``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gan_seg_aug.artifacts import read_json
from gan_seg_aug.evaluation.gan_quality import report_name
from gan_seg_aug.layout import GAN_CURVE, GAN_DONE, quality_dir

COLUMNS = ("critic_norm", "sampling_bn", "iterations", "health", "w_final", "w_second_half_median", "w_second_half_max",
           "gp_second_half_median", "seconds_per_iteration", "pair_consistency", "pair_consistency_ceiling",
           "kid_vs_train", "kid_real_val_vs_train", "fd_vs_train", "fd_real_val_vs_train", "precision", "recall",
           "precision_real_val", "recall_real_val", "one_component_fraction", "one_component_fraction_real_val",
           "area_w1", "area_w1_real_val", "centroid_row_w1", "centroid_col_w1", "memorised_fraction",
           "n_generated", "gan_dir")


def _curve(gan_dir: Path) -> dict:
    path = gan_dir / GAN_CURVE
    if not path.exists():
        return {}
    m = pd.read_csv(path)
    late = m[m["iteration"] > m["iteration"].max() / 2]
    return {"w_final": float(m["wasserstein"].iloc[-1]), "w_second_half_median": float(late["wasserstein"].median()),
            "w_second_half_max": float(late["wasserstein"].max()), "gp_second_half_median": float(late["gp"].median())}


def _speed(done: dict) -> float | None:
    trained = done.get("iterations", 0) - done.get("resumed_from", 0)
    return round(done["session_seconds"] / trained, 4) if trained > 0 and done.get("session_seconds") else None


def rows_of(gan_dir) -> list[dict]:
    """One row per sampling mode that has a report in ``gan_dir``."""
    gan_dir = Path(gan_dir)
    cfg, done = read_json(gan_dir / "config.json"), read_json(gan_dir / GAN_DONE)
    base = {"critic_norm": cfg.get("critic_norm"), "iterations": done.get("iterations"),
            "health": (done.get("health") or {}).get("status"), "seconds_per_iteration": _speed(done),
            **_curve(gan_dir), "gan_dir": gan_dir.name}
    out = []
    for mode in ("moving", "batch"):
        path = quality_dir(gan_dir) / f"{report_name(mode)}.json"
        if not path.exists():
            continue
        rep = read_json(path)
        feats, pc = rep.get("features", {}), rep.get("pair_consistency", {})
        gen, val = rep["masks"]["generated"], rep["masks"]["real_val"]
        out.append({**base, "sampling_bn": mode, "n_generated": rep.get("n_generated"),
                    "pair_consistency": pc.get("generated"), "pair_consistency_ceiling": pc.get("real_val_ceiling"),
                    **{k: feats.get(k) for k in ("kid_vs_train", "kid_real_val_vs_train", "fd_vs_train",
                                                 "fd_real_val_vs_train", "precision", "recall", "precision_real_val",
                                                 "recall_real_val")},
                    "one_component_fraction": gen.get("one_component_fraction"),
                    "one_component_fraction_real_val": val.get("one_component_fraction"),
                    "area_w1": gen.get("area_w1"), "area_w1_real_val": val.get("area_w1"),
                    "centroid_row_w1": gen.get("centroid_row_w1"), "centroid_col_w1": gen.get("centroid_col_w1"),
                    "memorised_fraction": (rep.get("memorisation") or {}).get("fraction_below")})
    return out


def quality_table(fold_dir) -> pd.DataFrame:
    """Every finished GAN directory (``gan_*`` with ``done.json``) of a fold, one row per sampling mode."""
    dirs = sorted(p for p in Path(fold_dir).glob("gan_*") if (p / GAN_DONE).exists())
    if not dirs:
        raise FileNotFoundError(f"{fold_dir}: no finished GAN run directories (gan_*/{GAN_DONE})")
    frame = pd.DataFrame([r for d in dirs for r in rows_of(d)], columns=list(COLUMNS))
    return frame.sort_values(["critic_norm", "sampling_bn"]).reset_index(drop=True)


def to_markdown(frame: pd.DataFrame, columns=None) -> str:
    """A plain Markdown table (no extra dependency).

    >>> print(to_markdown(pd.DataFrame({"a": [1.23456], "b": ["x"]})))
    | a | b |
    |---|---|
    | 1.235 | x |
    """
    cols = list(columns or frame.columns)

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for _, r in frame.iterrows()]
    return "\n".join(lines)
