"""B-spline elastic deformation with SimpleITK ``BSplineTransform`` semantics, evaluated fast.

Thesis §2.7.8 "Elastic Deformation": "a grid of sparse, regular control points [...] deforming each
control point using basis spline interpolation kernels" (footnote: ITK ``BSplineTransform``);
paper §V-A / Table I: "elastic deformation at 10 pixels for each control point" (standard deviation
of the control-point displacements).  The authors' code used a 3 x 3 mesh and cubic splines.

What "SimpleITK semantics" means here (checked against ``sitk.Resample`` in tests/test_elastic.py):

* The physical domain is the image grid: origin 0, spacing 1, identity direction, so pixel
  ``(row r, column c)`` is the point ``(x=c, y=r)``.
* ``sitk.BSplineTransformInitializer(image, [mesh]*2, order)`` (ITK 5.4) spans the pixel *edges*
  plus a 0.125 px margin: the domain is ``[-0.625, N - 0.375]`` on an axis of ``N`` pixels, the knot
  spacing is ``h = (N + 0.25) / mesh`` and there are ``mesh + order`` control points per axis, the
  first at ``-0.625 - h (order - 1) / 2``.
* A point ``x`` (continuous grid index ``u = (x - origin) / h``) moves by
  ``d(x) = sum_j c_j beta_order(u - j)`` per component, ``beta`` the centred B-spline kernel.  On a
  2-D grid this is separable, so the dense field is ``B_y @ C @ B_x.T`` per component, with
  per-axis basis matrices precomputed once for a size/mesh/order (two tiny matrix products instead
  of ITK's per-pixel weight evaluation).
* The coefficient layout is SimpleITK's parameter vector reshaped to ``(2, ny, nx)``: all x
  displacements first (x fastest), then all y displacements.
* The transform maps *output* points to *input* points and resampling pulls:
  ``out(p) = in(p + d(p))``.

Border handling (docs/decisions.md §6): points that land outside the image take the
nearest edge pixel (thesis §2.7.5's "nearest neighbor" boundary mode) for the image *and* the mask;
``cv2.BORDER_REPLICATE`` in the fast path, replicate-padding before ``sitk.Resample`` in the
reference.  The image is interpolated linearly, the mask by nearest neighbour (labels stay labels).
"""
from __future__ import annotations

import functools

import numpy as np

SPLINE_ORDERS = (1, 2, 3)
# ITK 5.4's BSplineTransformInitializer pads the pixel-edge domain by 1/8 px on each side.
_DOMAIN_MARGIN = 0.125


def _check_order(order: int) -> None:
    if order not in SPLINE_ORDERS:
        raise ValueError(f"elastic spline order {order!r}: expected one of {SPLINE_ORDERS} (AugParams.elastic_order)")


def bspline_kernel(t, order: int = 3) -> np.ndarray:
    """Centred B-spline kernel ``beta_order(t)`` (ITK ``BSplineKernelFunction``).

    >>> bspline_kernel(np.array([0.0, 1.0, 2.0]), 3).round(4).tolist()
    [0.6667, 0.1667, 0.0]
    >>> float(bspline_kernel(np.array([-1.5, -0.5, 0.5, 1.5]), 3).sum() + bspline_kernel(np.array([2.5]), 3)[0])
    1.0
    """
    _check_order(order)
    a = np.abs(np.asarray(t, dtype=np.float64))
    if order == 1:
        return np.where(a < 1, 1 - a, 0.0)
    if order == 2:
        return np.where(a < 0.5, 0.75 - a * a, np.where(a < 1.5, 0.5 * (1.5 - a) ** 2, 0.0))
    return np.where(a < 1, (4 - 6 * a * a + 3 * a ** 3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def control_grid(size: int, mesh: int, order: int = 3) -> tuple[float, float, int]:
    """``(origin, spacing, n_points)`` of the control grid on one axis of ``size`` pixels.

    Same numbers as ``sitk.BSplineTransformInitializer(image, [mesh]*2, order).GetFixedParameters()``
    for an image with origin 0 and spacing 1.

    >>> control_grid(256, 3, 3)
    (-86.04166666666667, 85.41666666666667, 6)
    """
    _check_order(order)
    if int(mesh) != mesh or mesh < 1:
        raise ValueError(f"elastic mesh size {mesh!r}: expected a whole number >= 1 (AugParams.elastic_mesh)")
    if size < 1:
        raise ValueError(f"image side {size!r}: expected >= 1 pixel")
    spacing = (size + 2 * _DOMAIN_MARGIN) / mesh
    origin = -0.5 - _DOMAIN_MARGIN - spacing * (order - 1) / 2
    return origin, spacing, int(mesh) + order


@functools.lru_cache(maxsize=32)
def basis_matrix(size: int, mesh: int, order: int = 3) -> np.ndarray:
    """``[size, mesh + order]`` weights of each control point at each pixel centre of one axis.

    Rows sum to one (B-splines are a partition of unity), so a constant coefficient grid is a
    constant shift.  Read-only: it is cached and shared.

    >>> b = basis_matrix(32, 3, 3)
    >>> b.shape, bool(np.allclose(b.sum(axis=1), 1.0))
    ((32, 6), True)
    """
    origin, spacing, n = control_grid(size, mesh, order)
    u = (np.arange(size, dtype=np.float64) - origin) / spacing
    b = bspline_kernel(u[:, None] - np.arange(n)[None, :], order)
    b.setflags(write=False)
    return b


def _check_coeffs(coeffs, height: int, width: int, order: int) -> np.ndarray:
    c = np.asarray(coeffs, dtype=np.float64)
    if c.ndim != 3 or c.shape[0] != 2 or min(c.shape[1:]) <= order:
        raise ValueError(f"elastic coefficients of shape {c.shape}: expected (2, mesh_y + order, mesh_x + order) "
                         f"with order={order}")
    return c


def displacement_field(coeffs, height: int, width: int, order: int = 3, rows=None, cols=None) -> np.ndarray:
    """Dense displacement ``[2, H, W]`` (x component first, in pixels) of the B-spline transform.

    ``rows`` / ``cols`` (integer pixel indices) evaluate the field at those grid positions
    instead, i.e. ``field[:, rows][:, :, cols]`` without computing the whole field first.

    >>> c = np.zeros((2, 6, 6)); c[0] = 2.5  # every control point moves +2.5 px in x
    >>> d = displacement_field(c, 8, 8)
    >>> bool(np.allclose(d[0], 2.5)), bool(np.allclose(d[1], 0.0))
    (True, True)
    """
    c = _check_coeffs(coeffs, height, width, order).astype(np.float32)
    by = basis_matrix(height, c.shape[1] - order, order).astype(np.float32)
    bx = basis_matrix(width, c.shape[2] - order, order).astype(np.float32)
    if rows is not None:
        by = by[rows]
    if cols is not None:
        bx = bx[cols]
    return np.stack([by @ c[k] @ bx.T for k in range(2)])


def warp(image: np.ndarray, mask: np.ndarray, coeffs, order: int = 3, rows=None, cols=None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Fast path: resample ``image`` [H, W] or [H, W, C] (linear) and ``mask`` [H, W] (nearest)
    through ONE B-spline field with ``cv2.remap`` and edge-replicating borders.

    ``rows`` / ``cols`` (length H / W, integer indices into the output grid) apply a later
    whole-pixel index remap (translation with clipped edges, flip) in the same pass: the result
    is ``warped[rows][:, cols]`` exactly, since each output pixel is an independent lookup.
    """
    import cv2

    image = np.asarray(image)
    mask = np.asarray(mask)
    h, w = mask.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"elastic warp: image {image.shape} and mask {mask.shape} differ in size")
    ry = np.arange(h) if rows is None else np.asarray(rows)
    rx = np.arange(w) if cols is None else np.asarray(cols)
    if ry.shape != (h,) or rx.shape != (w,):
        raise ValueError(f"elastic warp: rows/cols of shapes {ry.shape}/{rx.shape}, expected ({h},)/({w},)")
    d = displacement_field(coeffs, h, w, order, ry, rx)
    map_x = d[0]
    map_x += rx.astype(np.float32)[None, :]
    map_y = d[1]
    map_y += ry.astype(np.float32)[:, None]
    out_image = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).reshape(image.shape)
    # cv2 remaps 8/16-bit and float masks but not int32/int64; labels never exceed 255 here.
    if mask.dtype == np.uint8:
        src = mask
    elif mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"elastic warp: mask labels must lie in 0..255, got {mask.min()}..{mask.max()}")
    else:
        src = mask.astype(np.uint8)
    out_mask = cv2.remap(np.ascontiguousarray(src), map_x, map_y, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_REPLICATE).astype(mask.dtype, copy=False)
    return out_image, out_mask


# --- SimpleITK path (--elastic-backend simpleitk; ~50 pairs/s per core at 256^2) ----------------------

def sitk_transform(coeffs, height: int, width: int, order: int = 3):
    """The ``sitk.BSplineTransform`` that :func:`warp` evaluates: built with the initializer on
    an origin-0, spacing-1 ``height x width`` grid, parameters = ``coeffs.ravel()``."""
    import SimpleITK as sitk

    c = _check_coeffs(coeffs, height, width, order)
    ref = sitk.Image([int(width), int(height)], sitk.sitkFloat32)
    mesh = [c.shape[2] - order, c.shape[1] - order]  # SimpleITK lists x first
    tx = sitk.BSplineTransformInitializer(ref, mesh, order)
    tx.SetParameters(c.ravel().tolist())
    return tx


def sitk_displacement_field(coeffs, height: int, width: int, order: int = 3) -> np.ndarray:
    """``[2, H, W]`` field from ``sitk.TransformToDisplacementField`` (x component first)."""
    import SimpleITK as sitk

    tx = sitk_transform(coeffs, height, width, order)
    field = sitk.TransformToDisplacementField(tx, sitk.sitkVectorFloat64, [int(width), int(height)])
    return np.moveaxis(sitk.GetArrayFromImage(field), -1, 0).astype(np.float32)


def warp_sitk(image: np.ndarray, mask: np.ndarray, coeffs, order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Reference: ``sitk.Resample`` (linear image, nearest mask) with the same transform.

    ITK's resampler returns a constant outside the input; replicate-padding the input by more
    than the largest displacement (origin moved so physical points are unchanged) gives exactly
    the edge-replicate border of the fast path."""
    import SimpleITK as sitk

    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask)
    h, w = mask.shape[:2]
    tx = sitk_transform(coeffs, h, w, order)
    pad = int(np.ceil(np.abs(sitk_displacement_field(coeffs, h, w, order)).max())) + 2

    def resample(arr, interp):
        img = sitk.GetImageFromArray(arr, isVector=arr.ndim == 3)
        padded = sitk.ZeroFluxNeumannPad(img, [pad, pad], [pad, pad])
        ref = sitk.Image(img)  # same grid as the input: origin 0, spacing 1
        return sitk.GetArrayFromImage(sitk.Resample(padded, ref, tx, interp, 0.0))

    out_image = resample(image, sitk.sitkLinear).reshape(image.shape)
    out_mask = resample(mask.astype(np.uint8), sitk.sitkNearestNeighbor).astype(mask.dtype)
    return out_image, out_mask
