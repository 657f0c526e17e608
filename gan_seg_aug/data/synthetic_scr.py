"""Procedural chest radiographs with a left-lung mask: the embedded stand-in for SCR.

Mimics what the paper's SCR task sees (paper §V-A: "247 chest X-ray images ... we chose the task
of segmenting the left lung from the image"; images at 256x256, §V-A / thesis §5.1.2): a bright
body on a dark background, bright spine / mediastinum, a bright heart low and to the patient's
left, curved ribs and clavicles, and two dark lung fields.  The label is the **patient's left
lung**, which is on the **image's right** (SCR convention), with the heart cut out of it as in
the SCR masks.  Pixel spacing is the JSRT one after the paper's downscaling:
2048 px x 0.175 mm / 256 = 1.4 mm.

Not a model of anatomy: it only has to be non-trivial and learnable so that every command runs
end to end without the real data.
"""
from __future__ import annotations

import cv2
import numpy as np

from gan_seg_aug.data.synthetic_common import case_rng, chaikin, int_points, pixel_noise, smooth_field, soften

SIZE = 256
SPACING_MM = 2048 * 0.175 / SIZE  # 1.4 mm
STREAM = 1  # random stream of this dataset (the Cityscapes one uses 2)

# Outline of the left lung in lung-local coordinates: u from the medial border (0) to the
# lateral rib wall (1), v from the apex (0) to the costophrenic angle (1).  Clockwise in the
# image: apex, lateral wall, costophrenic angle, diaphragm dome, medial border.
_LUNG_UV = np.array([
    (0.30, 0.00), (0.50, 0.02), (0.70, 0.10), (0.84, 0.24), (0.93, 0.42), (0.98, 0.62),
    (1.00, 0.82), (1.00, 0.96), (0.95, 1.00), (0.80, 0.94), (0.62, 0.87), (0.42, 0.84),
    (0.22, 0.85), (0.06, 0.88), (0.00, 0.72), (0.02, 0.48), (0.06, 0.26), (0.15, 0.08),
])
_DOME = slice(9, 14)  # the diaphragm vertices


def _lung_outline(rng, medial_x: float, side: int, top: float, width: float, height: float) -> np.ndarray:
    """One lung field as smooth (x, y) polygon; ``side`` +1 = image right, -1 = image left."""
    uv = _LUNG_UV + rng.uniform(-0.03, 0.03, _LUNG_UV.shape)
    bulge = rng.uniform(-0.06, 0.06)  # lateral wall more or less convex
    uv[:, 0] += bulge * 4.0 * uv[:, 1] * (1.0 - uv[:, 1]) * uv[:, 0]
    uv[_DOME, 1] += rng.uniform(-0.05, 0.04)  # higher or lower diaphragm
    shear = rng.uniform(-0.08, 0.08)  # apex leaning medially or laterally
    uv[:, 0] += shear * (1.0 - uv[:, 1])
    x = medial_x + side * uv[:, 0] * width
    y = top + uv[:, 1] * height
    return chaikin(np.stack([x, y], axis=1), 3)


def _fill(mask_shape, polys, value: int = 1) -> np.ndarray:
    m = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(m, [int_points(p) for p in polys], value)
    return m


def _ribs(rng, cx: int, top: float, widths: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Posterior ribs (curved stripes from the spine outwards) and the two clavicles."""
    ribs = np.zeros((SIZE, SIZE), np.uint8)
    spacing = rng.uniform(15.5, 18.5)
    t = np.linspace(0.0, 1.0, 24)
    for side, width in zip((-1, 1), widths):
        reach = width + rng.uniform(8, 16)
        drop = rng.uniform(0.35, 0.55)
        for k in range(11):
            y0 = top - 10 + k * spacing + rng.uniform(-2, 2)
            xs = cx + side * (14 + t * reach)
            ys = y0 + reach * (-0.12 * t + (drop + rng.uniform(-0.06, 0.06)) * t * t)
            cv2.polylines(ribs, [int_points(np.stack([xs, ys], 1))], False, 1, thickness=int(rng.integers(4, 7)))
    clav = np.zeros((SIZE, SIZE), np.uint8)
    for side in (-1, 1):
        x0, y0 = cx + side * 10, top + rng.uniform(2, 12)
        x1, y1 = cx + side * rng.uniform(80, 100), top - rng.uniform(10, 22)
        mid = ((x0 + x1) / 2, (y0 + y1) / 2 - rng.uniform(0, 8))
        pts = int_points([(x0, y0), mid, (x1, y1)])
        cv2.polylines(clav, [pts], False, 1, thickness=int(rng.integers(7, 10)))
    return ribs, clav


def scr_lung_case(index: int, seed: int = 0, *, parts: bool = False):
    """One case: ``(image float32 [256,256,1] in [-1,1], label uint8 [256,256])``.

    With ``parts=True`` a third element maps part names ("left_lung", "right_lung", "heart",
    "body", "spine") to their uint8 masks, for tests and inspection.  Depends only on
    ``(seed, index)``.
    """
    rng = case_rng(seed, STREAM, index)
    shape = (SIZE, SIZE)
    cx = int(rng.integers(120, 137))

    body = np.zeros(shape, np.uint8)
    cv2.ellipse(body, (cx, int(rng.integers(140, 160))), (int(rng.integers(108, 125)), int(rng.integers(165, 186))),
                0, 0, 360, 1, -1)
    body[:70, cx - int(rng.integers(26, 36)):cx + int(rng.integers(26, 36))] = 1  # neck

    top = rng.uniform(20, 38)
    height = rng.uniform(160, 186)
    w_left, w_right = rng.uniform(78, 96), rng.uniform(84, 102)
    left = _fill(shape, [_lung_outline(rng, cx + rng.uniform(8, 16), 1, top, w_left, height)])
    right = _fill(shape, [_lung_outline(rng, cx - rng.uniform(10, 18), -1, top + rng.uniform(-4, 4),
                                        w_right, height - rng.uniform(0, 12))])

    heart = np.zeros(shape, np.uint8)
    hc = (int(cx + rng.uniform(14, 30)), int(top + height * rng.uniform(0.70, 0.78)))
    axes = (int(rng.uniform(44, 58)), int(rng.uniform(32, 42)))
    cv2.ellipse(heart, hc, axes, int(rng.integers(-32, -10)), 0, 360, 1, -1)
    # below the diaphragm: thicker soft tissue, brighter than the chest
    abdomen = np.zeros(shape, np.uint8)
    abdomen[int(top + height * rng.uniform(0.86, 0.92)):] = 1
    abdomen &= body
    left[:, :cx + 3] = 0  # jitter and shear must not push a lung across the midline
    right[:, cx - 2:] = 0
    left_field = left & (1 - heart)  # SCR lung masks stop at the heart border
    right_field = right & (1 - heart)

    spine = np.zeros(shape, np.uint8)
    half = int(rng.integers(12, 17))
    spine[:, cx - half:cx + half + 1] = 1
    mediastinum = np.zeros(shape, np.uint8)
    mhalf = int(rng.integers(18, 26))
    mediastinum[: hc[1], cx - mhalf:cx + mhalf + int(rng.integers(0, 8))] = 1
    vertebrae = np.zeros(shape, np.uint8)
    step, phase = int(rng.integers(11, 14)), int(rng.integers(0, 11))
    vertebrae[phase::step] = 1
    vertebrae &= spine
    ribs, clav = _ribs(rng, cx, top, (w_right, w_left))
    ribs &= body & (1 - abdomen)
    clav &= body
    heart_shadow = heart & (1 - abdomen)  # below the diaphragm the heart merges into the abdomen

    # Integer "densities" (how much each structure attenuates), blurred as one map per edge width
    # (the blur is linear, so this equals blurring each structure separately).
    soft_tissue = soften(100 * body.astype(np.int64) + 30 * mediastinum + 22 * spine + 30 * heart_shadow
                         + 22 * abdomen, 4)
    bone = soften(11 * ribs.astype(np.int64) + 22 * clav + 10 * vertebrae, 1)
    lungs = soften(left_field | right_field, 2)
    lung_texture = soften(rng.integers(0, 256, shape), 2) / 255.0  # vessels / mottling
    field = smooth_field(rng, shape, (3, 3))

    air = rng.uniform(55, 75)  # how dark the lungs are against the soft tissue
    lung_grad = 0.75 + 0.5 * smooth_field(rng, shape, (2, 2))  # uneven lung darkness
    d = (soft_tissue + bone * (0.4 + 0.9 * lungs) - air * lungs * lung_grad
         + 40.0 * lungs * lung_texture + 18.0 * field + 2.5 * pixel_noise(rng, shape))
    lo, hi = d.min(), d.max()
    img = (d - lo) / (hi - lo) * 2.0 - 1.0
    image = img.astype(np.float32)[..., None]
    if parts:
        return image, left_field, {"left_lung": left_field, "right_lung": right_field, "heart": heart,
                                   "body": body, "spine": spine}
    return image, left_field


def scr_lung_case_id(index: int) -> str:
    return f"SYN{index + 1:03d}"
