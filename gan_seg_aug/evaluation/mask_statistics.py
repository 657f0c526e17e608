"""Statistics of masks, real or generated, for the GAN quality report (:mod:`.gan_quality`):
connected components, areas and their 1-D Wasserstein distance, category frequencies.  Plain NumPy /
SciPy (thesis §5.1.3 / §5.2.3 judge generated masks by eye; these put numbers on the same looks)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

from gan_seg_aug.evaluation.quality_metrics import _count

# 8-connectivity, as in metrics.largest_component: a lung joined to itself by a diagonal step is one lung.
_EIGHT = np.ones((3, 3), dtype=bool)


def _masks(x, ndim: int, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != ndim:
        shape = "[H, W]" if ndim == 2 else "[n, H, W]"
        raise ValueError(f"{name}: expected a {ndim}-D {shape} array, got shape {a.shape}")
    return a != 0


def connected_components(mask) -> int:
    """Number of 8-connected foreground (nonzero) components of a 2-D mask.

    >>> connected_components(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]]))   # diagonal neighbours: one
    1
    >>> connected_components(np.array([[1, 0, 1], [0, 0, 0], [1, 0, 0]]))
    3
    """
    return int(ndimage.label(_masks(mask, 2, "mask"), structure=_EIGHT)[1])


def mask_statistics(masks) -> dict:
    """Per mask of a binary [n, H, W] stack: ``area`` fraction, ``centroid_row`` / ``centroid_col``
    (pixel centres as fractions of H / W, so 0.5 is the middle; NaN if empty), ``n_components``.

    >>> m = np.zeros((2, 4, 4), bool); m[0, :2, :2] = True
    >>> st = mask_statistics(m)
    >>> st["area"].tolist(), st["centroid_row"].tolist(), st["centroid_col"].tolist(), st["n_components"].tolist()
    ([0.25, 0.0], [0.25, nan], [0.25, nan], [1, 0])
    """
    m = _masks(masks, 3, "masks")
    h, w = m.shape[1:]
    count = m.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        row = (m.sum(axis=2) @ (np.arange(h) + 0.5)) / count / h
        col = (m.sum(axis=1) @ (np.arange(w) + 0.5)) / count / w
    return {"area": count / (h * w),
            "centroid_row": np.where(count > 0, row, np.nan), "centroid_col": np.where(count > 0, col, np.nan),
            "n_components": np.array([connected_components(x) for x in m], dtype=np.int64)}


def wasserstein_1d(a, b) -> float:
    """Wasserstein-1 distance of two scalar samples, NaNs (centroids of empty masks) dropped; NaN if
    nothing is left, so a generator of empty masks gets a report rather than an exception.

    >>> wasserstein_1d([0., 1., np.nan], [2., 3.])
    2.0
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(stats.wasserstein_distance(a, b))


def _labels(x, n_classes: int, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0 or a.dtype.kind not in "biu":
        raise ValueError(f"{name}: expected integer class labels with at least one pixel, got {a.dtype} {a.shape}")
    a = a.astype(np.int64)
    if a.min() < 0 or a.max() >= n_classes:
        raise ValueError(f"{name}: expected labels in 0..{n_classes - 1}, found {a.min()}..{a.max()}")
    return a.ravel()


def category_frequencies(labels, n_classes) -> np.ndarray:
    """Fraction of all pixels of an [n, H, W] label stack in each class, ``[n_classes]``.

    >>> category_frequencies(np.array([[[0, 1], [1, 2]]]), 4).tolist()
    [0.25, 0.5, 0.25, 0.0]
    """
    n_classes = _count(n_classes, "n_classes")
    if np.ndim(labels) != 3:
        raise ValueError(f"labels: expected a 3-D [n, H, W] array, got shape {np.shape(labels)}")
    flat = _labels(labels, n_classes, "labels")
    return np.bincount(flat, minlength=n_classes) / flat.size


def frequency_distance(p, q) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` of two probability vectors (0 equal, 1 disjoint).

    >>> frequency_distance([0.5, 0.5, 0.0], [0.25, 0.5, 0.25])
    0.25
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape:
        raise ValueError(f"expected two 1-D probability vectors of one length, got shapes {p.shape} and {q.shape}")
    for x, name in ((p, "p"), (q, "q")):
        if not (np.isfinite(x).all() and (x >= 0).all() and abs(x.sum() - 1.0) < 1e-6):
            raise ValueError(f"{name}: expected non-negative frequencies summing to 1, got sum {x.sum():.6g}")
    return float(0.5 * np.abs(p - q).sum())
