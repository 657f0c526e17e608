"""How finished runs become the paper's Tables I-IV (which runs make which row: :mod:`.run_catalogue`).

Paper §V-A (thesis §5.1.2): Table II reports "the average Dice score and Hausdorff distance over all
folds", so the per-image values of all folds are pooled (:func:`pool`); Tables I and III report the
validation score of one run per row, Table IV the test mIoU with and "excluding the 'Human' and
'Object' categories" (§V-B, thesis §5.2.2).

A run is found by the configuration recorded in its ``summary.json`` (mix, augmentation), not
only by its directory name, so a renamed directory or a profile that rescales pixel parameters
(``AugParams.scaled``) still matches.  Rows whose runs do not exist are kept and marked missing.

All values are fractions (0.9765, not 97.65 %); Hausdorff distances are in mm.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gan_seg_aug.artifacts import read_json
from gan_seg_aug.config import CITYSCAPES_CATEGORIES, task_spec
from gan_seg_aug.reporting.run_catalogue import LADDER, SCR_FOLDS, TABLE_TASK, RunSpec, TableRow, select_rows, table_rows

from gan_seg_aug.layout import REPO_ROOT, recorded_precision, recorded_stopping_rule
from gan_seg_aug.training.early_stopping import cap_leaves_run_unchanged

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- finding finished runs

@dataclass(frozen=True)
class FinishedRun:
    run_dir: Path
    summary: dict


def finished_runs(runs_dir, task: str, profile: str, dataset: str) -> list[FinishedRun]:
    """Every finished U-Net run (a ``summary.json`` exists) of a task / profile / dataset."""
    base = Path(runs_dir) / task / profile / dataset
    out = []
    for path in sorted(base.glob("fold*/*/summary.json")):
        try:
            summary = read_json(path)
            if "precision" not in summary:  # written before summaries said; the run's config does
                summary["precision"] = recorded_precision(path.parent)
            summary.setdefault("stopping_rule", recorded_stopping_rule(path.parent))
            out.append(FinishedRun(path.parent, summary))
        except ValueError as e:  # a corrupt summary must not hide the others
            log.warning(f"skipping {e}")
    return out


def _close(a, b) -> bool:
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def _same_stopping(summary: dict, wanted_rule: str) -> bool:
    """Did the run stop as a run under ``wanted_rule`` ("min/patience/val_every/cap") would have?  Same
    minimum, patience and validation interval; the cap may differ where it never acted (a run the thesis
    rule ended before either cap is the same run under both: early_stopping.cap_leaves_run_unchanged).

    >>> _same_stopping({"stopping_rule": "600/600/50/8000", "stopped_by": "early_stopping",
    ...                 "unet_iterations": 4350}, "600/600/50/30000")
    True
    >>> _same_stopping({"stopping_rule": "600/600/50/8000", "stopped_by": "max_iterations",
    ...                 "unet_iterations": 8000}, "600/600/50/30000")
    False
    """
    recorded = summary.get("stopping_rule")
    if recorded is None:
        return True  # written before runs recorded their rule
    *rule, old_cap = recorded.split("/")
    *wanted, new_cap = wanted_rule.split("/")
    return rule == wanted and cap_leaves_run_unchanged(
        int(old_cap), int(new_cap), iterations=int(summary.get("unet_iterations") or 0),
        stopped_by=summary.get("stopped_by") or "max_iterations")


# What runs made before a setting was recorded did (docs/decisions.md §3).
LEGACY_GAN = {"gan_critic_norm": "batch", "sampling_bn": "moving"}


def matches(spec: RunSpec, summary: dict, want: dict | None = None) -> bool:
    """Does this finished run have the configuration of ``spec`` and the GAN / seed settings ``want``
    (``critic_norm``, ``sampling_bn``, ``seed``, ``precision``, ``stopping_rule``; omitted keys are not
    checked; a run that does not record its stopping rule is not refused for it)?

    Pixel stds are accepted at the paper's resolution or rescaled to the run's resolution
    (profiles below the paper size record ``AugParams.scaled`` values).
    """
    s, want = summary, want or {}
    if "seed" in want and int(s.get("seed") or 0) != int(want["seed"]):
        return False
    if "precision" in want and s.get("precision", "float32") != want["precision"]:
        return False
    if want.get("stopping_rule") and not _same_stopping(s, want["stopping_rule"]):
        return False  # a run of an earlier version of the profile (other patience, cap, ...) is not this row
    if spec.n_generated > 0:
        for key, field in (("critic_norm", "gan_critic_norm"), ("sampling_bn", "sampling_bn")):
            if key in want and (s.get(field) or LEGACY_GAN[field]) != want[key]:
                return False
    if (s.get("train_cases") or None) != spec.train_cases:  # a subset's run never stands in for the full set's
        return False
    if (s.get("task") != spec.task or int(s.get("fold", 1)) != spec.fold or s.get("n_real") != spec.n_real
            or s.get("n_generated") != spec.n_generated or bool(s.get("augment")) != (spec.aug is not None)):
        return False
    if spec.aug is None:
        return True
    if s.get("run_name") == spec.run_name:
        return True
    p = s.get("aug_params") or {}
    a = spec.aug
    try:
        if not (_close(p.get("shift_std", 0), a.shift_std) and _close(p.get("scale_std", 0), a.scale_std)
                and bool(p.get("flip", False)) == a.flip):
            return False
        res = s.get("resolution") or [task_spec(spec.task).height]
        factor = float(res[0]) / task_spec(spec.task).height
        return any(_close(p.get("translate_std", 0), a.translate_std * f)
                   and _close(p.get("elastic_std", 0), a.elastic_std * f) for f in {1.0, factor})
    except (TypeError, ValueError):
        return False


def find_run(spec: RunSpec, runs: list[FinishedRun], want: dict | None = None) -> FinishedRun | None:
    hits = [r for r in runs if matches(spec, r.summary, want)]
    if not hits:
        return None
    named = [r for r in hits if r.run_dir.name == spec.run_name]
    return (named or sorted(hits, key=lambda r: str(r.summary.get("date", ""))))[-1]


# --------------------------------------------------------------------------- pooling and tables


def pool(values) -> dict:
    """Mean and sample std (``ddof=1``, as ``evaluate.summarise_scr``) of per-image values.

    Paper §V-A reports Dice and Hausdorff "over all folds": the per-image values of the three test
    sets are pooled (247 images), not the three fold means averaged.  An infinite distance (empty
    prediction) makes the mean infinite on purpose; ``n_undefined`` counts such values.

    >>> pool([0.9, 0.95, 1.0])
    {'mean': 0.95, 'std': 0.05, 'n': 3, 'n_undefined': 0}
    >>> pool([1.0, float("inf")])["mean"]
    inf
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean = float(v.mean()) if v.size else math.nan
        std = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return {"mean": round(mean, 12), "std": round(std, 12), "n": int(v.size),
            "n_undefined": int((~np.isfinite(v)).sum())}


def display_path(path) -> str:
    """Run directories as written into the tables: relative to the repository when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def resolve_run_dir(text: str) -> Path:
    """Inverse of :func:`display_path` (relative paths are relative to the repository)."""
    p = Path(text)
    return p if p.is_absolute() else REPO_ROOT / p


GAN_QUALITY_COLUMNS = ("gan_pair_consistency", "gan_kid_vs_train", "gan_precision", "gan_recall",
                       "gan_one_component_fraction", "gan_category_tv_distance", "gan_memorised_fraction")
INFO_COLUMNS = ("status", "profile", "dataset", "n_test", "precision", "stopping_rule", "critic_norm", "sampling_bn", "gan_health",
                *GAN_QUALITY_COLUMNS, "gan_iterations", "unet_iterations", "best_iteration",
                "stopped_by", "seed", "git_commit", "date", "run_dir")


def _run_info(run: FinishedRun) -> dict:
    s = run.summary
    gen = (s.get("n_generated") or 0) > 0
    quality = s.get("gan_quality") or {}
    return {"profile": s.get("profile"), "dataset": s.get("dataset"), "n_test": (s.get("test") or {}).get("n"),
            "precision": s.get("precision", "float32"), "stopping_rule": s.get("stopping_rule"),
            "critic_norm": (s.get("gan_critic_norm") or LEGACY_GAN["gan_critic_norm"]) if gen else None,
            "sampling_bn": (s.get("sampling_bn") or LEGACY_GAN["sampling_bn"]) if gen else None,
            "gan_health": s.get("gan_health"), **{c: quality.get(c) for c in GAN_QUALITY_COLUMNS},
            "gan_iterations": s.get("gan_iterations"), "unet_iterations": s.get("unet_iterations"),
            "best_iteration": s.get("best_iteration"), "stopped_by": s.get("stopped_by"), "seed": s.get("seed"),
            "git_commit": s.get("git_commit"), "date": s.get("date"), "run_dir": display_path(run.run_dir)}


def _missing_info(profile, dataset) -> dict:
    return {k: None for k in INFO_COLUMNS} | {"status": "missing", "profile": profile, "dataset": dataset}


def _merged(values):
    """One value when all folds agree, else the per-fold values joined by ';'."""
    uniq = list(dict.fromkeys("" if v is None else str(v) for v in values))
    return values[0] if len(uniq) == 1 else ";".join("" if v is None else str(v) for v in values)


def _setting_columns(row: TableRow, task: str) -> dict:
    a = row.aug
    cols = {"shift_std": a.shift_std, "scale_std": a.scale_std, "translate_px": a.translate_std}
    return cols | ({"elastic_px": a.elastic_std} if task == "scr_lung" else {"flip": a.flip})


def _single_run_row(row: TableRow, runs, profile, dataset, want=None) -> dict:
    spec = row.runs[0]
    run = find_run(spec, runs, want)
    out = {"row_id": row.row_id}
    if row.aug is not None:
        out |= _setting_columns(row, spec.task)
    else:
        out |= {"network_id": spec.network_id, "n_real": spec.n_real, "n_generated": spec.n_generated,
                "augment": spec.aug is not None}
    s = run.summary if run else {}
    val, test = s.get("val") or {}, s.get("test") or {}
    if row.table == "I":
        out |= {"val_dice_mean": val.get("dice_mean"), "val_dice_std": val.get("dice_std")}
    elif row.table == "III":
        out |= {"val_miou8": val.get("miou8")}
    else:
        out |= {k: test.get(k) for k in ("miou8", "miou8_no_human_object", "miou7", "miou7_no_human_object")}
        per_cat = test.get("iou_per_category") or {}
        out |= {f"iou_{c}": per_cat.get(c) for c in CITYSCAPES_CATEGORIES}
    info = (_run_info(run) | {"status": "ok"}) if run else _missing_info(profile, dataset)
    return out | {"run_name": s.get("run_name", spec.run_name)} | info


SCR_METRICS = ("dice", "hausdorff_mm", "hd95_mm", "assd_mm")


def _pooled_row(row: TableRow, runs, profile, dataset, want=None) -> dict:
    spec0 = row.runs[0]
    out = {"row_id": row.row_id, "network_id": spec0.network_id, "n_real": spec0.n_real,
           "n_generated": spec0.n_generated, "augment": spec0.aug is not None}
    if row.table == LADDER:
        out["train_cases"] = spec0.train_cases or "all"
    found, frames = [], []
    for spec in row.runs:
        run = find_run(spec, runs, want)
        csv = run.run_dir / "metrics_per_image.csv" if run else None
        if run and not csv.exists():
            log.warning(f"{csv} missing; fold {spec.fold} of {spec.network_id} left out")
            run = None
        if run:
            found.append((spec.fold, run))
            frames.append(pd.read_csv(csv))
    per_image = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SCR_METRICS))
    for m in SCR_METRICS:
        p = pool(per_image[m]) if m in per_image else pool([])
        out[f"{m}_mean"] = p["mean"]
        if m in ("dice", "hausdorff_mm"):
            out[f"{m}_std"] = p["std"]
        if m == "hausdorff_mm":
            out["hausdorff_undefined"] = p["n_undefined"]
    out["folds"] = ";".join(str(f) for f, _ in found)
    if not found:
        return out | {"hausdorff_undefined": None} | _missing_info(profile, dataset)
    infos = [_run_info(r) for _, r in found]
    merged = {k: _merged([i[k] for i in infos]) for k in infos[0]}
    merged["run_dir"] = ";".join(i["run_dir"] for i in infos)
    merged["n_test"] = len(per_image)
    if row.table == LADDER:
        merged["n_train"] = found[0][1].summary.get("n_train")  # fold 1 only; absent in older summaries
    status = "ok" if len(found) == len(row.runs) else "partial"
    return out | merged | {"status": status}


def build_table(table: str, runs_dir, profile: str, dataset: str, folds=SCR_FOLDS, only=None,
                want: dict | None = None) -> pd.DataFrame:
    """Table ``I``..``IV`` from the finished runs under ``runs_dir`` (missing rows kept, marked).

    ``dataset`` is ``real`` or ``synthetic`` (the embedded default data); ``only`` restricts the
    rows (row ids or run names), as ``experiments/tables.py --only`` does; ``want``: the GAN and seed
    settings a run must have been made with (:func:`matches`).
    """
    task = TABLE_TASK.get(table)
    rows = select_rows(table_rows(table, folds), only)
    runs = finished_runs(runs_dir, task, profile, dataset)
    make = _pooled_row if table in ("II", LADDER) else _single_run_row
    frame = pd.DataFrame([make(r, runs, profile, dataset, want) for r in rows])
    for c in ("n_real", "n_generated", "n_test", "gan_iterations", "unet_iterations", "best_iteration", "seed",
              "hausdorff_undefined"):
        if c in frame and frame[c].map(lambda v: v is None or _is_whole(v)).all():
            frame[c] = frame[c].astype("Int64")  # whole numbers stay whole next to missing rows
    front = [c for c in frame.columns if c not in INFO_COLUMNS and c != "folds"]
    back = [c for c in ("folds",) + INFO_COLUMNS if c in frame.columns]
    return frame[front + back]


def _is_whole(v) -> bool:
    try:
        return math.isnan(float(v)) or float(v) == int(float(v))
    except (TypeError, ValueError):
        return False
