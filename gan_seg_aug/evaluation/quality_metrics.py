"""The arithmetic of the GAN quality report (:mod:`.gan_quality`): Fréchet distance, unbiased KID
(Binkowski et al. 2018), improved precision / recall (Kynkäänniemi et al. 2019), nearest neighbours,
memorisation, and mask statistics.  Plain NumPy / SciPy, so it is testable, and re-runnable on saved
features, without a model."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg, ndimage, stats
from scipy.spatial.distance import cdist

# 8-connectivity, as in metrics.largest_component: a lung joined to itself by a diagonal step is one lung.
_EIGHT = np.ones((3, 3), dtype=bool)
_BLOCK = 2 ** 22  # float64 elements (32 MB) per chunk of rows or of distances: pixel rows have ~1e5 values


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _rows(x, name: str, min_rows: int = 1, ndim: int | None = None, cast: bool = True) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64) if cast else np.asarray(x)
    if a.ndim < 1 or (ndim is not None and a.ndim != ndim):
        what = "a 2-D [n, d] array" if ndim == 2 else "rows [n, ...]"
        raise ValueError(f"{name}: expected {what}, got shape {a.shape}")
    if len(a) < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} samples, got {len(a)}")
    a = a.reshape(len(a), int(np.prod(a.shape[1:])))  # -1 cannot be inferred for an empty array
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: expected finite values, found NaN or inf")
    return a


def _feature_pair(a, b, names=("feats_a", "feats_b"), min_rows: int = 2):
    a, b = _rows(a, names[0], min_rows, ndim=2), _rows(b, names[1], min_rows, ndim=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {names[0]} has {a.shape[1]}, {names[1]} has {b.shape[1]}")
    return a, b


def _ranges(n: int, step: int):
    return ((s, min(s + step, n)) for s in range(0, n, step))


def frechet_distance(feats_a, feats_b, *, eps: float = 1e-6) -> float:
    """``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` of Gaussians fitted to two [n, d] sets.

    >>> a = np.array([[0., 0.], [1., 0.], [0., 1.], [1., 1.]])
    >>> round(frechet_distance(a, a), 6)
    0.0
    >>> round(frechet_distance(a, a + [3., 4.]), 6)   # same covariance, mean shifted by |(3, 4)| = 5
    25.0
    """
    a, b = _feature_pair(feats_a, feats_b)
    diff = a.mean(0) - b.mean(0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        root = linalg.sqrtm(ca @ cb)
    if any(issubclass(w.category, linalg.LinAlgWarning) for w in caught) or not np.isfinite(root).all():
        # Fewer samples than dimensions (or dead features) make the covariances singular, where sqrtm is
        # unreliable; a ridge of eps makes both positive definite and moves the distance by O(eps * d).
        ridge = eps * np.eye(len(ca))
        root = linalg.sqrtm((ca + ridge) @ (cb + ridge))
    # The product of two PSD matrices has a real square root; an imaginary part is round-off.
    fd = diff @ diff + np.trace(ca) + np.trace(cb) - 2.0 * np.trace(np.real(root))
    return float(max(fd, 0.0))  # rounding can leave -1e-12 for identical sets; a distance is >= 0


def _kernel_params(d: int, degree, gamma, coef):
    if gamma is not None and not float(gamma) > 0:
        raise ValueError(f"gamma must be > 0 (or None for 1/d), got {gamma!r}")
    return _count(degree, "degree"), 1.0 / d if gamma is None else float(gamma), float(coef)


def _mmd2_unbiased(x, y, degree: int, gamma: float, coef: float) -> float:
    kxx = (gamma * (x @ x.T) + coef) ** degree
    kyy = (gamma * (y @ y.T) + coef) ** degree
    kxy = (gamma * (x @ y.T) + coef) ** degree
    m, n = len(x), len(y)
    # Leaving out the diagonals k(x_i, x_i) makes the estimate unbiased (and able to go below 0).
    within = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within - 2.0 * kxy.mean())


def kid(feats_a, feats_b, *, degree=3, gamma=None, coef=1.0, n_subsets=None, subset_size=None, seed=0):
    """KID ``(mean, std)``: unbiased MMD^2 with kernel ``(gamma x.y + coef)^degree``, gamma 1/d by default.
    No subsets: one estimate on all samples, std 0.0.  With ``n_subsets`` and / or ``subset_size``
    (defaults 100 and ``min(1000, n_a, n_b)``): over random subsets drawn with ``seed``, as Binkowski et al.

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    >>> m, s = kid(a, b)
    >>> abs(m - kid_bruteforce(a, b)) < 1e-12, s
    (True, 0.0)
    >>> kid(a, a + 3.0)[0] > 1.0
    True
    """
    a, b = _feature_pair(feats_a, feats_b)
    degree, gamma, coef = _kernel_params(a.shape[1], degree, gamma, coef)
    if n_subsets is None and subset_size is None:
        return _mmd2_unbiased(a, b, degree, gamma, coef), 0.0
    n_subsets = _count(100 if n_subsets is None else n_subsets, "n_subsets")
    limit = min(len(a), len(b))
    size = _count(min(1000, limit) if subset_size is None else subset_size, "subset_size", 2)
    if size > limit:
        raise ValueError(f"subset_size {size}: expected at most the smaller sample count {limit}")
    rng = np.random.default_rng(seed)
    est = [_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)],
                          degree, gamma, coef) for _ in range(n_subsets)]
    return float(np.mean(est)), float(np.std(est))


def kid_bruteforce(feats_a, feats_b, *, degree=3, gamma=None, coef=1.0) -> float:
    """:func:`kid` without subsets as explicit sums over pairs: a test oracle for a few dozen samples.

    >>> kid_bruteforce([[0.], [1.]], [[0.], [1.]], degree=1, gamma=1.0)   # unbiased: can go below 0
    -0.5
    """
    a, b = _feature_pair(feats_a, feats_b)
    degree, gamma, coef = _kernel_params(a.shape[1], degree, gamma, coef)

    def k(x, y):
        return (gamma * sum(float(u) * float(v) for u, v in zip(x, y)) + coef) ** degree

    m, n = len(a), len(b)
    s_aa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    s_bb = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j)
    s_ab = sum(k(a[i], b[j]) for i in range(m) for j in range(n))
    return s_aa / (m * (m - 1)) + s_bb / (n * (n - 1)) - 2.0 * s_ab / (m * n)


def _knn_radii(x, k: int) -> np.ndarray:
    radii = np.empty(len(x))
    for s, e in _ranges(len(x), max(1, _BLOCK // max(len(x), x.shape[1]))):
        d = cdist(x[s:e], x)
        d[np.arange(e - s), np.arange(s, e)] = np.inf  # a sample is not its own neighbour
        radii[s:e] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return radii


def _coverage(points, centres, radii) -> float:
    inside = np.zeros(len(points), dtype=bool)
    for s, e in _ranges(len(points), max(1, _BLOCK // max(len(centres), points.shape[1]))):
        inside[s:e] = (cdist(points[s:e], centres) <= radii).any(axis=1)
    return float(inside.mean())


def precision_recall(real, fake, *, k=3):
    """``(precision, recall)`` of Kynkäänniemi et al. 2019 on [n, d] features: each real sample's ball
    reaches its k-th nearest other real sample; precision is the fraction of fakes inside some real
    ball, recall the fraction of reals inside some fake ball (built the same way on the fakes).

    >>> real = np.array([[0.], [1.], [2.], [3.]])
    >>> precision_recall(real, real, k=1)
    (1.0, 1.0)
    >>> precision_recall(real, np.array([[0.], [1.], [10.], [11.]]), k=1)   # real 2 is 1 from fake 1
    (0.5, 0.75)
    """
    k = _count(k, "k")
    real, fake = _feature_pair(real, fake, ("real", "fake"), min_rows=k + 1)
    return _coverage(fake, real, _knn_radii(real, k)), _coverage(real, fake, _knn_radii(fake, k))


def nearest_distances(query, reference, *, exclude_self=False):
    """``(dist [nq], index [nq])``: Euclidean distance from each flattened query row to its nearest
    reference row, and that row.  ``exclude_self``: query *is* reference, so row i may not match itself.

    >>> ref = np.array([[0., 0.], [3., 4.], [10., 0.]])
    >>> d, i = nearest_distances(np.array([[3., 3.]]), ref)
    >>> d.tolist(), i.tolist()
    ([1.0], [1])
    >>> nearest_distances(ref, ref, exclude_self=True)[0].tolist()
    [5.0, 5.0, 8.06225774829855]
    """
    q = _rows(query, "query", cast=False)
    r = _rows(reference, "reference", 2 if exclude_self else 1, cast=False)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query rows have {q.shape[1]} values, reference rows {r.shape[1]}")
    if exclude_self and q.shape != r.shape:
        raise ValueError(f"exclude_self expects query to be reference, got shapes {q.shape} and {r.shape}")
    # |q|^2 + |r|^2 - 2 q.r runs on BLAS, which matters for image rows; the winner's distance is then
    # recomputed directly, so an exact copy scores exactly 0 rather than round-off.
    step = max(1, min(2048, _BLOCK // q.shape[1]))
    dist, index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for qs, qe in _ranges(len(q), step):
        qb = q[qs:qe].astype(np.float64)
        best, arg = np.full(qe - qs, np.inf), np.zeros(qe - qs, dtype=np.int64)
        for rs, re in _ranges(len(r), step):
            rb = r[rs:re].astype(np.float64)
            d2 = (qb * qb).sum(1)[:, None] + (rb * rb).sum(1)[None, :] - 2.0 * (qb @ rb.T)
            if exclude_self:
                d2[np.arange(qs, qe)[:, None] == np.arange(rs, re)[None, :]] = np.inf
            j = d2.argmin(axis=1)
            better = d2[np.arange(qe - qs), j] < best
            best[better], arg[better] = d2[np.arange(qe - qs), j][better], j[better] + rs
        index[qs:qe] = arg
        dist[qs:qe] = np.sqrt(((qb - r[arg]) ** 2).sum(axis=1))
    return dist, index


def memorisation(gen_to_train_dist, val_to_train_dist, *, percentile=5.0) -> dict:
    """Generated -> train vs real val -> train nearest-neighbour distances.  ``fraction_below``: share of
    generated samples strictly closer to the training set than the val ``percentile`` (the threshold);
    about ``percentile`` / 100 for a generator that copies no more than held-out data does.

    >>> m = memorisation([0., 0., 5., 6.], [2., 4., 6., 8., 10.], percentile=25)
    >>> m["threshold"], m["fraction_below"], m["gen_median"], m["val_median"]
    (4.0, 0.5, 2.5, 6.0)
    """
    g = _rows(gen_to_train_dist, "gen_to_train_dist").ravel()
    v = _rows(val_to_train_dist, "val_to_train_dist").ravel()
    if not 0.0 <= float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    threshold = float(np.percentile(v, percentile))
    return {"threshold": threshold, "fraction_below": float(np.mean(g < threshold)),
            "gen_median": float(np.median(g)), "val_median": float(np.median(v))}


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


def dice(a, b) -> float:
    """Dice ``2|A & B| / (|A| + |B|)`` of two binary masks (nonzero = foreground); 1.0 when both are empty.

    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3] = True
    >>> dice(a, b), dice(a * 0, b * 0)
    (0.5, 1.0)
    """
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def mean_iou(pred, target, n_classes) -> float:
    """Mean IoU ``TP / (TP + FP + FN)`` from one confusion matrix over all pixels of all images; a class
    absent from both prediction and target is left out.

    >>> mean_iou(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), 3)   # IoU 1/2 and 2/3; class 2 absent
    0.5833333333333333
    """
    n_classes = _count(n_classes, "n_classes")
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"pred and target differ in shape: {np.shape(pred)} vs {np.shape(target)}")
    p, t = _labels(pred, n_classes, "pred"), _labels(target, n_classes, "target")
    conf = np.bincount(t * n_classes + p, minlength=n_classes ** 2).reshape(n_classes, n_classes)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0]))
