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

from gan_seg_aug.config import CITYSCAPES_CATEGORIES, task_spec
from gan_seg_aug.evaluation.metrics import (confusion_matrix, dice, distance_candidates, hausdorff_px_at, iou_per_class,
                                           largest_component, mean_of_defined, miou_report)

SCR_METRICS = ("dice", "hausdorff_mm", "hd95_mm", "assd_mm")
# Other readings of the paper's "Hausdorff" (docs/hausdorff.md), after the original columns so that
# every reader of the first ones is unaffected: average boundary distances at native spacing and
# the maximum distance in pixels at the paper's 256² network resolution.
SCR_CANDIDATES = ("mean_directed_mm", "modified_hd_mm", "hd_px256")
PAPER_SIDE = 256


def confusion_columns(names=CITYSCAPES_CATEGORIES) -> list[str]:
    """Per-image confusion counts as CSV columns, ``conf_<true>_as_<predicted>`` in row-major order,
    so a per-image table is enough to recompute a dataset-level mIoU (``paired_stats.miou_difference``).

    >>> confusion_columns(("a", "b"))
    ['conf_a_as_a', 'conf_a_as_b', 'conf_b_as_a', 'conf_b_as_b']
    """
    return [f"conf_{t}_as_{p}" for t in names for p in names]


def evaluate_scr(model, data, case_ids, *, batch_size: int = 8):
    """Per-case SCR metrics at the native ground-truth resolution (thesis §4.2, §5.1.2).

    ``data`` holds the images at the network's resolution (``TaskData.resized``); each prediction is
    upsampled bicubically to ``data.native_label(i).shape``, reduced to its largest connected
    component (when the task's spec says so: SCR), and compared with the native mask using
    ``data.spacing_mm[i]`` (any binary task: own data too, in pixels when it has no spacing).
    Returns a DataFrame with columns case_id, dice, hausdorff_mm, hd95_mm, assd_mm, pred_pixels,
    gt_pixels, then the candidate readings :data:`SCR_CANDIDATES` (``hd_px256`` is NaN when the native
    mask is not square with a side that is a multiple of 256).
    """
    import pandas as pd

    from gan_seg_aug.evaluation.predict import predict_probabilities, upsample_labels

    _check_task(model, data, "dice", 2)
    rows = []
    for i, probs in _predictions(model, data, case_ids, batch_size, predict_probabilities):
        gt = np.asarray(data.native_label(i)) > 0
        pred = upsample_labels(probs, gt.shape) == 1
        if task_spec(data.task).largest_component:  # SCR (§4.2); own data only when asked (two lungs are two)
            pred = largest_component(pred)
        m = distance_candidates(pred, gt, data.spacing_mm[i])
        rows.append({"case_id": data.case_ids[i], "dice": dice(pred, gt), "hausdorff_mm": m["hausdorff"],
                     "hd95_mm": m["hd95"], "assd_mm": m["assd"], "pred_pixels": int(pred.sum()),
                     "gt_pixels": int(gt.sum()), "mean_directed_mm": m["mean_directed"],
                     "modified_hd_mm": m["modified_hausdorff"], "hd_px256": _hd_px256(pred, gt)})
    return pd.DataFrame(rows, columns=["case_id", *SCR_METRICS, "pred_pixels", "gt_pixels", *SCR_CANDIDATES])


def _hd_px256(pred, gt) -> float:
    h, w = gt.shape
    if h != w or h % PAPER_SIDE:
        return float("nan")  # e.g. a stand-in dataset at another size: no 256² reading exists
    return hausdorff_px_at(pred, gt, PAPER_SIDE)


def summarise_scr(df) -> dict:
    """Mean and sample standard deviation (ddof=1) of each SCR metric over the cases of ``df``
    (paper Table II reports mean and "stddev" without saying which; docs/decisions.md §7).
    ``n_infinite`` counts cases whose distances are infinite (an empty prediction); they make the
    distance means infinite on purpose.  The candidate columns (:data:`SCR_CANDIDATES`) are summarised
    too when present; NaN values (no 256² reading) are left out of their mean.
    """
    if len(df) == 0:
        raise ValueError("no cases to summarise (empty metrics table)")
    missing = [k for k in SCR_METRICS if k not in df]
    if missing:
        raise ValueError(f"metrics table lacks columns {missing}; has {list(df.columns)}")
    out = {"n": int(len(df))}
    for k in SCR_METRICS:
        v = df[k].to_numpy(dtype=np.float64)
        out[f"{k}_mean"] = float(v.mean())
        with np.errstate(invalid="ignore"):  # an infinite distance makes the std NaN, not a warning
            out[f"{k}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    out["n_infinite"] = int((~np.isfinite(df["hausdorff_mm"].to_numpy(dtype=np.float64))).sum())
    for k in (c for c in SCR_CANDIDATES if c in df):
        v = df[k].to_numpy(dtype=np.float64)
        v = v[~np.isnan(v)]
        out[f"{k}_mean"] = float(v.mean()) if v.size else float("nan")
    return out


def evaluate_cityscapes(model, data, case_ids, *, batch_size: int = 8):
    """Category mIoU at the native ground-truth resolution (thesis §4.2, §5.2).

    One confusion matrix is accumulated over all ``case_ids`` (IoU from the summed counts), so the
    report is a test-set score, not a mean of per-image scores.  Returns ``(report, per_image)``:
    :func:`miou_report` plus ``n`` and the ``confusion_matrix``, and a DataFrame with each image's
    pixel accuracy, mIoU over the categories present in it, per-category IoU and its confusion
    counts (:func:`confusion_columns`).
    """
    import pandas as pd

    from gan_seg_aug.evaluation.predict import predict_probabilities, upsample_labels

    names = list(task_spec(data.task).class_names)  # Cityscapes: CITYSCAPES_CATEGORIES; own data: its classes
    k = len(names)
    _check_task(model, data, "miou", k)
    total = np.zeros((k, k), dtype=np.int64)
    rows = []
    for i, probs in _predictions(model, data, case_ids, batch_size, predict_probabilities):
        gt = np.asarray(data.native_label(i))
        conf = confusion_matrix(upsample_labels(probs, gt.shape), gt, k)
        total += conf
        iou = iou_per_class(conf)
        rows.append({"case_id": data.case_ids[i], "pixel_accuracy": float(np.trace(conf) / conf.sum()),
                     f"miou{k}": mean_of_defined(iou), **{f"iou_{n}": float(x) for n, x in zip(names, iou)},
                     **dict(zip(confusion_columns(names), conf.ravel().tolist()))})
    report = {"n": len(rows), **class_report(total, names), "confusion_matrix": total.tolist()}
    return report, pd.DataFrame(rows)


def class_report(conf, names) -> dict:
    """:func:`miou_report` for the Cityscapes categories (§5.2.2, with the official variants); for any other
    K classes (own data) its part that needs no 'void' / 'human' / 'object': ``miou<K>``, the mean IoU over
    all K classes (thesis Eq. 4.2), the pixel accuracy and the IoU per class.

    >>> class_report(np.array([[3, 1], [0, 4]]), ["a", "b"])["miou2"]
    0.775
    """
    if tuple(names) == CITYSCAPES_CATEGORIES:
        return miou_report(conf, names)
    conf, iou = np.asarray(conf), iou_per_class(conf)
    return {f"miou{len(names)}": mean_of_defined(iou),
            "pixel_accuracy": float(np.trace(conf) / conf.sum()) if conf.sum() else float("nan"),
            "iou_per_category": {n: float(x) for n, x in zip(names, iou)}}


def _predictions(model, data, case_ids, batch_size, predict_probabilities):
    """(index, probabilities) per case, predicting one batch at a time to bound memory."""
    idx = data.indices(list(case_ids))
    if len(idx) == 0:
        raise ValueError("no case ids to evaluate")
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        yield from zip(chunk, predict_probabilities(model, data.images[chunk], batch_size))


def _check_task(model, data, metric, n_classes):
    spec = task_spec(data.task)  # the task's metric family decides, not its name (own data has either)
    if spec.metric != metric:
        raise ValueError(f"evaluate_{'scr' if metric == 'dice' else 'cityscapes'} got {spec.name!r} data, "
                         f"whose metric is {spec.metric}")
    out = model.output_shape[-1]
    if out != n_classes:
        raise ValueError(f"the model predicts {out} classes, {spec.name} has {n_classes}")
