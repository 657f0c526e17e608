"""Bit-reproducible drawing primitives shared by the two procedural datasets.

"Same seed, same bytes on every machine" rules out the float paths that differ between CPUs:
SIMD transcendental ufuncs (``np.sin``/``np.exp`` may dispatch to different implementations),
BLAS, float convolutions of non-integer data, and ``rng.normal`` (its ziggurat tail calls libm).
So everything here is built from integer arithmetic and single IEEE-754 operations
(``+ - * /``), which are correctly rounded everywhere; random numbers come only from
``Generator.random`` / ``Generator.integers`` / ``Generator.uniform``; OpenCV draws with integer
coordinates only.
"""
from __future__ import annotations

import cv2
import numpy as np


def case_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """One independent generator per case, so any case can be regenerated alone.

    ``stream`` keeps the two datasets' random streams apart for the same ``seed``.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and case index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([int(seed), int(stream), int(index)])


def soften(a: np.ndarray, r: int, passes: int = 3) -> np.ndarray:
    """Gaussian-like blur (``passes`` box filters of side 2r+1, edges replicated) -> float64.

    Bit-exact on every platform although it runs in OpenCV: the input is integer-valued and the
    box filter is unnormalised, so every partial sum is an integer below 2**53 and therefore
    exact in float64 whatever the summation order or SIMD path.  The single division at the
    end is correctly rounded.
    """
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"soften() needs an integer map to stay bit-exact, got dtype {a.dtype}")
    k = 2 * r + 1
    peak = max(abs(int(a.max(initial=0))), abs(int(a.min(initial=0))))
    if peak * k ** (2 * passes) >= 2 ** 53:
        raise ValueError(f"soften(): values up to {peak} would overflow exact float64 sums (r={r}, passes={passes})")
    s = a.astype(np.float64)
    if r <= 0:
        return s
    for _ in range(passes):
        s = cv2.boxFilter(s, -1, (k, k), normalize=False, borderType=cv2.BORDER_REPLICATE)
    return s / float(k ** (2 * passes))


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse grid of uniforms, smoothstep-interpolated."""
    gh, gw = grid
    coarse = rng.random((gh + 1, gw + 1))
    return _interp(coarse, shape)


def _interp(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    gh, gw = coarse.shape[0] - 1, coarse.shape[1] - 1
    ys = np.arange(h, dtype=np.float64) * gh / h
    xs = np.arange(w, dtype=np.float64) * gw / w
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    fy, fx = ys - y0, xs - x0
    fy, fx = fy * fy * (3.0 - 2.0 * fy), fx * fx * (3.0 - 2.0 * fx)  # smoothstep: no grid creases
    rows = coarse[:, x0] * (1.0 - fx) + coarse[:, x0 + 1] * fx  # separable: columns first, then rows
    return rows[y0] * (1.0 - fy)[:, None] + rows[y0 + 1] * fy[:, None]


def pixel_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Triangular noise in (-1, 1) (mean 0, std 0.41) as a sum of two uniforms: no libm involved."""
    return rng.random(shape) + rng.random(shape) - 1.0


def chaikin(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Corner cutting of a closed polygon: a few rounds give a smooth, B-spline-like outline."""
    p = np.asarray(points, dtype=np.float64)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


def int_points(xy: np.ndarray) -> np.ndarray:
    """Float (x, y) vertices -> the int32 array OpenCV's drawing functions expect."""
    return np.floor(np.asarray(xy, dtype=np.float64) + 0.5).astype(np.int32).reshape(-1, 1, 2)
