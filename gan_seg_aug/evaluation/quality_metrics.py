"""The arithmetic of the GAN quality report (:mod:`.gan_quality`): Fréchet distance, unbiased KID
(Binkowski et al. 2018), improved precision / recall (Kynkäänniemi et al. 2019), nearest neighbours,
and memorisation (mask statistics: :mod:`.mask_statistics`).  Plain NumPy / SciPy, so it is testable, and re-runnable on saved
features, without a model."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist

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
