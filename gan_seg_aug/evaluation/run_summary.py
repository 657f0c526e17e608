"""A finished U-Net run's evaluation and summary (thesis §5.1.2: Dice and Hausdorff distance on the
test set; §5.2.2: mIoU over the 8 categories), at the native ground-truth resolution.

The task's metric family decides which: binary tasks get SCR's metrics, K-class tasks the mIoU.  Own data
without a pixel spacing measures distances in pixels of its masks; its columns and keys then say ``_px``
instead of ``_mm`` and the summary records ``distance_unit``.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from gan_seg_aug.artifacts import atomic_write_csv, provenance, read_json
from gan_seg_aug.augment.settings import aug_identity
from gan_seg_aug.layout import GAN_DONE

log = logging.getLogger(__name__)


def one_line(summary: dict, run_dir) -> str:
    """The one line a finished run prints (and prints again when it is reused)."""
    s, t = summary, summary["test"]
    head = f"{s['task']} fold {s['fold']} {s['run_name']} [{s['profile']}, {s['dataset']}]"
    unit = s.get("distance_unit", "mm")
    miou = next((k for k in t if re.fullmatch(r"miou\d+", k)), None)  # miou8 (Cityscapes), miou<K> (own data)
    if "dice_mean" in t:
        body = (f"test Dice {t['dice_mean']:.4f} ± {t['dice_std']:.4f}, HD {t[f'hausdorff_{unit}_mean']:.2f} ± "
                f"{t[f'hausdorff_{unit}_std']:.2f} {unit} (n={t['n']}); val Dice {s['val']['dice_mean']:.4f}")
    elif "miou7" in t:
        body = (f"test mIoU {t['miou8']:.4f} (no human/object {t['miou8_no_human_object']:.4f}, official 7-cat "
                f"{t['miou7']:.4f}, n={t['n']}); val mIoU {s['val']['miou8']:.4f}")
    else:
        body = f"test mIoU {t[miou]:.4f} over {miou[4:]} classes (n={t['n']}); val mIoU {s['val'][miou]:.4f}"
    return f"{head}: {body} -> {run_dir}"


def in_unit(name: str, unit: str) -> str:
    """A metric's column / key name for distances in ``unit`` (the evaluation names them in mm).

    >>> in_unit("hausdorff_mm_mean", "px"), in_unit("hd_px256", "px"), in_unit("dice", "px")
    ('hausdorff_px_mean', 'hd_px256', 'dice')
    """
    return re.sub(r"_mm(?=_|$)", f"_{unit}", name)



def evaluate_and_summarise(cfg, data, fold, run_dir, aug, name, fold_no, train_summary, gan_iterations,
                           gan_dir) -> dict:
    """Evaluate the run's best weights on the fold's val and test sets at native resolution, write the
    per-image CSVs and return the summary (written by the caller, last, as the run's finished marker)."""
    from gan_seg_aug.config import task_fields, task_spec
    from gan_seg_aug.evaluation import segmentation as E
    from gan_seg_aug.reporting.gan_report import report_columns
    from gan_seg_aug.training.unet_trainer import load_unet

    spec = task_spec(cfg.task)
    model = load_unet(run_dir)
    small = data.resized(cfg.height, cfg.width)
    results = {}
    for subset in ("val", "test"):
        log.info(f"evaluating on the {subset} set ({len(fold[subset])} cases) at native resolution ...")
        if spec.metric == "dice":
            df = E.evaluate_scr(model, small, fold[subset])
            report = E.summarise_scr(df)
            if spec.distance_unit != "mm":  # own data without --spacing-mm: the names say what was measured
                df = df.rename(columns=lambda c: in_unit(c, spec.distance_unit))
                report = {in_unit(k, spec.distance_unit): v for k, v in report.items()}
            results[subset] = (report, df)
        else:
            results[subset] = E.evaluate_cityscapes(model, small, fold[subset])
    atomic_write_csv(run_dir / "metrics_per_image.csv", results["test"][1])
    atomic_write_csv(run_dir / "metrics_val_per_image.csv", results["val"][1])
    val, test = results["val"][0], results["test"][0]
    val = {"loss": train_summary.get("best_val_loss"), **{k: v for k, v in val.items() if k != "n"}}
    # own data also records its whole spec (task_fields) and, for binary masks, the unit of the distances
    unit = {"distance_unit": spec.distance_unit} if spec.metric == "dice" and not isinstance(cfg.task, str) else {}
    return {
        **task_fields(cfg.task), **unit, "fold": fold_no, "network_id": cfg.network_id, "run_name": name,
        "n_real": cfg.n_real, "n_generated": cfg.n_generated, "augment": aug is not None,
        "aug_params": aug_identity(aug),
        **provenance(profile=cfg.profile, dataset=data.source, seed=cfg.seed),
        "gan_iterations": gan_iterations, "gan_dir": gan_dir,
        "gan_critic_norm": read_json(Path(gan_dir) / "config.json").get("critic_norm") if gan_dir else None,
        "sampling_bn": cfg.sampling_bn if gan_dir else None, "precision": cfg.precision,
        "gan_precision": read_json(Path(gan_dir) / "config.json").get("precision") if gan_dir else None,
        "gan_health": (read_json(Path(gan_dir) / GAN_DONE).get("health") or {}).get("status") if gan_dir else None,
        "gan_quality": report_columns(gan_dir, cfg.sampling_bn) if gan_dir else {},
        "unet_iterations": train_summary.get("iterations"), "best_iteration": train_summary.get("best_iteration"),
        "stopped_by": train_summary.get("stopped_by"),
        "resolution": [cfg.height, cfg.width], "unet_width_div": cfg.unet_width_div,
        "val": val, "test": {"n": len(fold["test"]), **{k: v for k, v in test.items() if k != "n"}},
    }
