"""The per-task evaluation of a trained U-Net at native ground-truth resolution.

Thesis §4.2: outputs are upsampled bicubically "to the target resolution" (:mod:`.predict`);
"When computing the final segmentation masks of the SCR Lung Database, we additionally apply
largest-connected-component post-processing [...].  Afterwards, we compute the Dice coefficient,
the Hausdorff distance (for the SCR Lung Database), and the mean Intersection-over-Union (mIoU)
(for the Cityscapes dataset)".  The metrics themselves are in :mod:`.metrics`; choices the thesis
leaves open are argued in docs/decisions.md §7 ("Evaluation").
"""
from __future__ import annotations

import numpy as np

from gan_seg_aug.config import CITYSCAPES_CATEGORIES
from gan_seg_aug.evaluation.metrics import (confusion_matrix, dice, iou_per_class, largest_component, mean_of_defined, miou_report,
                      surface_metrics)

SCR_METRICS = ("dice", "hausdorff_mm", "hd95_mm", "assd_mm")


def evaluate_scr(model, data, case_ids, *, batch_size: int = 8):
    """Per-case SCR metrics at the native ground-truth resolution (thesis §4.2, §5.1.2).

    ``data`` holds the images at the network's resolution (``TaskData.resized``); each prediction is
    upsampled bicubically to ``data.native_label(i).shape``, reduced to its largest connected
    component, and compared with the native mask using ``data.spacing_mm[i]``.
    Returns a DataFrame with columns case_id, dice, hausdorff_mm, hd95_mm, assd_mm, pred_pixels,
    gt_pixels.
    """
    import pandas as pd

    from gan_seg_aug.evaluation.predict import predict_probabilities, upsample_labels

    _check_task(model, data, "scr_lung", 2)
    rows = []
    for i, probs in _predictions(model, data, case_ids, batch_size, predict_probabilities):
        gt = np.asarray(data.native_label(i)) > 0
        pred = largest_component(upsample_labels(probs, gt.shape) == 1)
        m = surface_metrics(pred, gt, data.spacing_mm[i])
        rows.append({"case_id": data.case_ids[i], "dice": dice(pred, gt), "hausdorff_mm": m["hausdorff"],
                     "hd95_mm": m["hd95"], "assd_mm": m["assd"], "pred_pixels": int(pred.sum()),
                     "gt_pixels": int(gt.sum())})
    return pd.DataFrame(rows, columns=["case_id", *SCR_METRICS, "pred_pixels", "gt_pixels"])


def summarise_scr(df) -> dict:
    """Mean and sample standard deviation (ddof=1) of each SCR metric over the cases of ``df``
    (paper Table II reports mean and "stddev" without saying which; docs/decisions.md §7).
    ``n_infinite`` counts cases whose distances are infinite (an empty prediction); they make the
    distance means infinite on purpose.
    """
    if len(df) == 0:
        raise ValueError("no cases to summarise (empty metrics table)")
    out = {"n": int(len(df))}
    for k in SCR_METRICS:
        v = df[k].to_numpy(dtype=np.float64)
        out[f"{k}_mean"] = float(v.mean())
        with np.errstate(invalid="ignore"):  # an infinite distance makes the std NaN, not a warning
            out[f"{k}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    out["n_infinite"] = int((~np.isfinite(df["hausdorff_mm"].to_numpy(dtype=np.float64))).sum())
    return out


def evaluate_cityscapes(model, data, case_ids, *, batch_size: int = 8):
    """Category mIoU at the native ground-truth resolution (thesis §4.2, §5.2).

    One confusion matrix is accumulated over all ``case_ids`` (IoU from the summed counts), so the
    report is a test-set score, not a mean of per-image scores.  Returns ``(report, per_image)``:
    :func:`miou_report` plus ``n`` and the ``confusion_matrix``, and a DataFrame with each image's
    pixel accuracy, mIoU over the categories present in it, and per-category IoU.
    """
    import pandas as pd

    from gan_seg_aug.evaluation.predict import predict_probabilities, upsample_labels

    names = list(CITYSCAPES_CATEGORIES)
    k = len(names)
    _check_task(model, data, "cityscapes", k)
    total = np.zeros((k, k), dtype=np.int64)
    rows = []
    for i, probs in _predictions(model, data, case_ids, batch_size, predict_probabilities):
        gt = np.asarray(data.native_label(i))
        conf = confusion_matrix(upsample_labels(probs, gt.shape), gt, k)
        total += conf
        iou = iou_per_class(conf)
        rows.append({"case_id": data.case_ids[i], "pixel_accuracy": float(np.trace(conf) / conf.sum()),
                     "miou8": mean_of_defined(iou), **{f"iou_{n}": float(x) for n, x in zip(names, iou)}})
    report = {"n": len(rows), **miou_report(total, names), "confusion_matrix": total.tolist()}
    return report, pd.DataFrame(rows)


def _predictions(model, data, case_ids, batch_size, predict_probabilities):
    """(index, probabilities) per case, predicting one batch at a time to bound memory."""
    idx = data.indices(list(case_ids))
    if len(idx) == 0:
        raise ValueError("no case ids to evaluate")
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        yield from zip(chunk, predict_probabilities(model, data.images[chunk], batch_size))


def _check_task(model, data, task, n_classes):
    if data.task != task:
        raise ValueError(f"evaluate_{task.split('_')[0]} got {data.task!r} data")
    out = model.output_shape[-1]
    if out != n_classes:
        raise ValueError(f"the model predicts {out} classes, {task} has {n_classes}")
