"""Segmentation metrics in plain NumPy / SciPy: overlap, surface distances, confusion matrix and mIoU.

Thesis §4.3.1 (Dice, Eq. 4.1), §4.3.2 (IoU, Eq. 4.2), §4.3.3 (Hausdorff, Eqs. 4.3-4.4), and the
SCR post-processing of §4.2: "we additionally apply largest-connected-component post-processing".
No model here: :mod:`.evaluate` feeds these functions a trained U-Net's predictions.  Choices the
thesis leaves open are argued in docs/decisions.md §7 ("Evaluation").
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from gan_seg_aug.config import CITYSCAPES_CATEGORIES

# 8-connectivity for "connected": a lung joined to itself only through a diagonal step is still one lung.
_EIGHT = np.ones((3, 3), dtype=bool)
# A boundary pixel is a mask pixel with a 4-neighbour outside the mask (the image border counts as outside).
_FOUR = ndimage.generate_binary_structure(2, 1)


def largest_component(mask) -> np.ndarray:
    """Keep only the largest 8-connected foreground component (thesis §4.2, SCR post-processing).

    Ties go to the component met first in row-major order.  An empty mask stays empty.

    >>> m = np.array([[1, 1, 0, 0],
    ...               [1, 0, 0, 1],
    ...               [0, 0, 0, 0],
    ...               [0, 0, 1, 0]])
    >>> largest_component(m).astype(int)
    array([[1, 1, 0, 0],
           [1, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]])
    """
    mask = np.asarray(mask) > 0
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def dice(pred, gt) -> float:
    """Dice = 2TP / (2TP + FP + FN) (thesis Eq. 4.1).  Both masks empty: 1.0 (nothing to find, nothing
    found); exactly one empty: 0.0.

    >>> a = np.zeros((4, 4), bool); a[:2] = True     # 8 pixels
    >>> b = np.zeros((4, 4), bool); b[1:3] = True    # 8 pixels, 4 shared
    >>> dice(a, b)
    0.5
    """
    p, g = _binary_pair(pred, gt)
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def boundary(mask) -> np.ndarray:
    """Mask pixels with at least one 4-neighbour outside the mask (outside the image counts as
    outside).  The result is an 8-connected contour, one pixel thick.

    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> boundary(m).astype(int)[1:4, 1:4]
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 1, 1]])
    """
    mask = np.asarray(mask) > 0
    return mask & ~ndimage.binary_erosion(mask, structure=_FOUR, border_value=0)


def boundary_distances(pred, gt, spacing=(1.0, 1.0)):
    """Directed distances between the two boundaries, in the units of ``spacing`` (row, col).

    Returns ``(d_pred, d_gt)``: for every boundary pixel of ``pred`` its Euclidean distance to the
    nearest boundary pixel of ``gt`` (pixel centres, physical spacing), and vice versa.  Both
    masks must be non-empty (the caller handles empty masks).
    """
    p, g = _binary_pair(pred, gt)
    sp = _spacing(spacing)
    if not p.any() or not g.any():
        raise ValueError("boundary_distances needs two non-empty masks")
    bp, bg = boundary(p), boundary(g)
    # Distances between points inside the joint bounding box never involve pixels outside it, so
    # cropping is exact and makes a 1024x1024 SCR mask cost a fraction of the full transform.
    rows, cols = np.nonzero(bp | bg)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    bp, bg = bp[box], bg[box]
    to_gt = ndimage.distance_transform_edt(~bg, sampling=sp)
    to_pred = ndimage.distance_transform_edt(~bp, sampling=sp)
    return to_gt[bp], to_pred[bg]


def surface_metrics(pred, gt, spacing=(1.0, 1.0)) -> dict:
    """Hausdorff distance, its 95th-percentile variant and the average symmetric surface distance,
    all on boundary pixels with physical ``spacing`` (row, col), in the units of ``spacing``.

    * ``hausdorff``: max(h(A, B), h(B, A)) (thesis Eqs. 4.3-4.4) over the boundary pixel sets;
    * ``hd95``: max of the two directed 95th percentiles (linear interpolation);
    * ``assd``: mean of all distances of both directions pooled.

    Both empty: all 0.0.  Exactly one empty: all ``inf`` (the distance to an empty set is the
    infimum over nothing, +inf); a mean over cases then shows the failure instead of hiding it.

    >>> a = np.zeros((7, 7), bool); a[1:4, 1:4] = True
    >>> b = np.zeros((7, 7), bool); b[1:4, 3:6] = True   # a shifted by 2 columns
    >>> {k: float(v) for k, v in surface_metrics(a, b, spacing=(0.5, 0.5)).items()}
    {'hausdorff': 1.0, 'hd95': 1.0, 'assd': 0.5}

    (Each square has 8 boundary pixels; per direction 3 lie at 0 px, 2 at 1 px and 3 at 2 px from
    the other boundary: max 2 px = 1.0 mm, mean 8/8 px = 0.5 mm.)
    """
    m = distance_candidates(pred, gt, spacing)
    return {k: m[k] for k in ("hausdorff", "hd95", "assd")}


def distance_candidates(pred, gt, spacing=(1.0, 1.0)) -> dict:
    """:func:`surface_metrics` plus two more averages of the directed boundary distances, from one
    distance transform: readings of the paper's "Hausdorff" that fit its magnitude (docs/hausdorff.md).

    * ``mean_directed``: the mean of the two directed means (a short contour weighs as much as a
      long one; ``assd`` pools the distances instead);
    * ``modified_hausdorff``: max of the two directed means (Dubuisson & Jain 1994).

    Empty masks as in :func:`surface_metrics`.  Paper §V-A and thesis §4.3.3 name only the maximum
    (Eqs. 4.3-4.4); these exist because its 1.21 mm at Dice 0.977 does not fit a maximum.

    >>> a = np.zeros((8, 8), bool); a[1:7, 1:7] = True     # 6x6 square, 20 boundary pixels
    >>> b = np.zeros((8, 8), bool); b[2:6, 2:6] = True     # 4x4 inside it, 12 boundary pixels
    >>> {k: round(float(v), 4) for k, v in distance_candidates(a, b).items()}
    {'hausdorff': 1.4142, 'hd95': 1.4142, 'assd': 1.0518, 'mean_directed': 1.0414, 'modified_hausdorff': 1.0828}

    (b's contour lies 1 px inside a's, a's 4 corners sqrt(2) px from b's: directed means 1 (b -> a)
    and (16 + 4 sqrt 2) / 20 = 1.0828 (a -> b); pooled (12 + 16 + 4 sqrt 2) / 32 = 1.0518.)
    """
    p, g = _binary_pair(pred, gt)
    names = ("hausdorff", "hd95", "assd", "mean_directed", "modified_hausdorff")
    if not p.any() and not g.any():
        return dict.fromkeys(names, 0.0)
    if not p.any() or not g.any():
        return dict.fromkeys(names, np.inf)
    d_p, d_g = boundary_distances(p, g, spacing)
    return {"hausdorff": float(max(d_p.max(), d_g.max())),
            "hd95": float(max(np.percentile(d_p, 95), np.percentile(d_g, 95))),
            "assd": float((d_p.sum() + d_g.sum()) / (d_p.size + d_g.size)),
            "mean_directed": float((d_p.mean() + d_g.mean()) / 2),
            "modified_hausdorff": float(max(d_p.mean(), d_g.mean()))}


def block_majority(mask, side: int) -> np.ndarray:
    """A ``side`` x ``side`` mask from a square mask whose side is a multiple of ``side``: a pixel is
    foreground when at least half of its block is (what ``data.scr.downsample_mask`` does to make the
    256² training labels, here without OpenCV).

    >>> block_majority(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]), 2).astype(int)
    array([[1, 0],
           [0, 0]])
    """
    m = np.asarray(mask) > 0
    h, w = m.shape if m.ndim == 2 else (0, -1)
    if h != w or side < 1 or h % side:
        raise ValueError(f"block_majority needs a square 2-D mask whose side is a multiple of {side}, "
                         f"got shape {m.shape}")
    f = h // side
    return m.reshape(side, f, side, f).mean(axis=(1, 3)) >= 0.5


def hausdorff_px_at(pred, gt, side: int = 256) -> float:
    """Boundary Hausdorff distance in pixels after both masks are reduced to ``side``² by
    :func:`block_majority`: the maximum distance measured at the paper's network resolution
    (§V-A: 256x256) with no physical spacing -- a candidate for its "mm" (docs/hausdorff.md).

    >>> gt = np.zeros((8, 8), bool); gt[0:4, 0:4] = True
    >>> pred = np.zeros((8, 8), bool); pred[0:4, 2:6] = True   # 2 native px = 1 px at 4x4
    >>> hausdorff_px_at(pred, gt, side=4)
    1.0
    """
    p, g = _binary_pair(pred, gt)
    return distance_candidates(block_majority(p, side), block_majority(g, side))["hausdorff"]


def hausdorff_mm(pred, gt, spacing) -> float:
    """Boundary-based Hausdorff distance in mm (see :func:`surface_metrics`)."""
    return surface_metrics(pred, gt, spacing)["hausdorff"]


def hd95_mm(pred, gt, spacing) -> float:
    return surface_metrics(pred, gt, spacing)["hd95"]


def assd_mm(pred, gt, spacing) -> float:
    return surface_metrics(pred, gt, spacing)["assd"]


def confusion_matrix(pred, gt, n_classes: int) -> np.ndarray:
    """``conf[g, p]`` = number of pixels with ground truth ``g`` predicted as ``p`` (int64); add the
    matrices of all images to evaluate a whole test set (IoU is computed from the sums, not
    averaged per image, as in cityscapesScripts).

    >>> confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """
    p = np.asarray(pred).ravel().astype(np.int64)
    g = np.asarray(gt).ravel().astype(np.int64)
    if p.shape != g.shape:
        raise ValueError(f"prediction has {p.size} pixels, ground truth {g.size}")
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} labels must be in 0..{n_classes - 1}, found {a.min()}..{a.max()}")
    return np.bincount(g * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(conf) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class (thesis Eq. 4.2); NaN for a class absent from both
    ground truth and prediction (left out of means, as cityscapesScripts does).

    >>> iou_per_class(np.array([[3, 1], [0, 4]]))
    array([0.75, 0.8 ])
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def _iou_ignoring_void(conf, void: int) -> np.ndarray:
    """cityscapesScripts' category IoU: ground-truth void pixels are ignored (no FP from them),
    void is not a class, and predicting void on a non-void pixel is a false negative."""
    conf = np.asarray(conf, dtype=np.float64)
    keep = np.array([c for c in range(conf.shape[0]) if c != void])
    tp = np.diag(conf)[keep]
    fn = conf[keep, :].sum(1) - tp  # includes predictions of void
    fp = conf[np.ix_(keep, keep)].sum(0) - tp  # rows of void ground truth skipped
    denom = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def miou_report(conf, class_names=CITYSCAPES_CATEGORIES, *, void: str = "void",
                small: tuple[str, ...] = ("human", "object")) -> dict:
    """mIoU variants for the Cityscapes categories from a test-set confusion matrix.

    * ``miou8``: mean IoU over the network's 8 classes, void included as an ordinary class; the
      number we compare with paper Table IV / thesis Table 5.4 (docs/decisions.md §7);
    * ``miou7``: the official category mIoU (cityscapesScripts): void pixels ignored, 7 categories;
    * ``*_no_human_object``: the same without 'human' and 'object' (Table IV, second column).

    Worked example: every category perfect except 4 void pixels predicted as 'flat'.  Those halve
    the IoU of void and of flat in the 8-class mean, but the official score ignores them:

    >>> conf = np.diag([4] * 8); conf[0, 1] = 4
    >>> r = miou_report(conf)
    >>> r["iou_per_category"]["void"], r["iou_per_category"]["flat"], r["miou8"]
    (0.5, 0.5, 0.875)
    >>> r["miou7"], round(r["miou8_no_human_object"], 4)
    (1.0, 0.8333)
    """
    names = list(class_names)
    conf = np.asarray(conf)
    if conf.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix is {conf.shape}, expected {len(names)}x{len(names)} for {names}")
    for n in (void, *small):
        if n not in names:
            raise ValueError(f"class {n!r} not among {names}")
    iou8 = iou_per_class(conf)
    v = names.index(void)
    names7 = [n for n in names if n != void]
    iou7 = _iou_ignoring_void(conf, v)
    mean = mean_of_defined
    return {
        "miou8": mean(iou8),
        "miou7": mean(iou7),
        "miou8_no_human_object": mean([x for n, x in zip(names, iou8) if n not in small]),
        "miou7_no_human_object": mean([x for n, x in zip(names7, iou7) if n not in small]),
        "pixel_accuracy": float(np.trace(conf) / conf.sum()) if conf.sum() else float("nan"),
        "iou_per_category": {n: float(x) for n, x in zip(names, iou8)},
        "iou7_per_category": {n: float(x) for n, x in zip(names7, iou7)},
    }


def mean_of_defined(values) -> float:
    """Mean over the non-NaN values (NaN marks a class absent from both ground truth and
    prediction); NaN when there are none, without NumPy's empty-slice warning.

    >>> mean_of_defined([0.5, float("nan"), 1.0])
    0.75
    """
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _binary_pair(pred, gt):
    p, g = np.asarray(pred) > 0, np.asarray(gt) > 0
    if p.shape != g.shape or p.ndim != 2:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must be 2-D masks of the same shape")
    return p, g


def _spacing(spacing):
    sp = np.asarray(spacing, dtype=np.float64).ravel()
    if sp.shape != (2,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise ValueError(f"spacing must be two positive numbers (row, col) in mm, got {spacing!r}")
    return tuple(sp)
