"""Procedural street scenes with the 8 Cityscapes categories: the embedded stand-in for Cityscapes.

Mimics the paper's second task (paper §V-B: "we decided to only do segmentation of the 8 object
groups ('categories') defined in the Cityscapes dataset"; images downscaled to
"[256 x 128 x 3]", W x H x C): a street seen from a car, in perspective from a random horizon
and vanishing point.  Category ids follow the official table (``config.CITYSCAPES_CATEGORIES``):
0 void (the ego-vehicle's bonnet at the bottom), 1 flat (road, sidewalk, lane markings),
2 construction (building facades with windows), 3 object (poles, signs, traffic lights),
4 nature (trees, hedges), 5 sky, 6 human, 7 vehicle.  Small things (poles, people) are only a
few pixels wide at this size, as in the paper's downscaled data (§V-B).

Not a model of real streets: it only has to be non-trivial and learnable so that every command
runs end to end without the real data.
"""
from __future__ import annotations

import cv2
import numpy as np

from gan_seg_aug.data.synthetic_common import case_rng, int_points, pixel_noise, smooth_field, soften

HEIGHT, WIDTH = 128, 256
STREAM = 2  # random stream of this dataset (the SCR one uses 1)
VOID, FLAT, CONSTRUCTION, OBJECT, NATURE, SKY, HUMAN, VEHICLE = range(8)

# Base colours (RGB) roughly as they appear in Cityscapes photographs (not the label colours).
_BUILDING = ((178, 168, 150), (205, 195, 172), (140, 120, 105), (160, 160, 158), (120, 95, 80), (190, 185, 175))
_CAR = ((40, 40, 45), (200, 200, 205), (120, 120, 125), (30, 50, 90), (140, 30, 30), (210, 190, 40), (25, 25, 25))
_CLOTHES = ((30, 30, 35), (60, 60, 80), (110, 90, 70), (150, 40, 40), (40, 70, 120), (200, 200, 200))


class _Scene:
    """The colour canvas and the label map, painted together so they always agree."""

    def __init__(self):
        self.rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        self.lab = np.zeros((HEIGHT, WIDTH), np.uint8)

    def poly(self, pts, label: int, colour):
        self.polys([pts], label, colour)

    def polys(self, many, label: int, colour):
        p = [int_points(pts) for pts in many]
        cv2.fillPoly(self.rgb, p, tuple(int(c) for c in colour))
        cv2.fillPoly(self.lab, p, label)

    def rect(self, x0, y0, x1, y1, label: int, colour):
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], label, colour)

    def ellipse(self, cx, cy, ax, ay, label: int, colour):
        c, a = (int(round(cx)), int(round(cy))), (max(1, int(round(ax))), max(1, int(round(ay))))
        cv2.ellipse(self.rgb, c, a, 0, 0, 360, tuple(int(v) for v in colour), -1)
        cv2.ellipse(self.lab, c, a, 0, 0, 360, label, -1)


def _jitter(rng, colour, amount: int = 18):
    return np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _facades(rng, sc: _Scene, h: float, v: float, side: int, base_x: float):
    """Building blocks along one side of the street, standing on the line VP -> ``base_x``."""
    span = v if side < 0 else WIDTH - v  # horizontal distance from the VP to the image border
    end = span - rng.uniform(6, 30)  # blocks stop short of the vanishing point
    d = 0.0
    while d < end:
        w = rng.uniform(25, 90) * (1.0 - 0.6 * d / span)
        d1 = min(end, d + max(6.0, w))
        gap = rng.random()
        if gap < 0.22:  # a gap between buildings: sky, or a park's trees
            d = d1
            continue
        slope = rng.uniform(0.45, 1.5)  # facade height per unit of distance from the VP
        if gap < 0.36:
            slope *= 0.6
        pts = []
        for dd in (span - d, span - d1):  # distance from the VP of the block's two vertical edges
            x = v + side * dd
            base = h + dd / abs(v - base_x) * (HEIGHT - h)
            pts.append((x, base, h - dd * slope))
        (xa, ba, ta), (xb, bb, tb) = pts
        if gap < 0.36:  # vegetation instead of a facade
            sc.poly([(xa, ba), (xa, ta), (xb, tb), (xb, bb)], NATURE, _jitter(rng, (75, 100, 50), 20))
        else:
            colour = _jitter(rng, _BUILDING[rng.integers(len(_BUILDING))])
            sc.poly([(xa, ba), (xa, ta), (xb, tb), (xb, bb)], CONSTRUCTION, colour)
            _windows(rng, sc, (xa, ba, ta), (xb, bb, tb), colour)
        d = d1


def _windows(rng, sc: _Scene, a, b, colour):
    """A grid of darker windows on a facade (still 'construction'), drawn in one call."""
    (xa, ba, ta), (xb, bb, tb) = a, b
    n_cols, n_rows = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    dark = np.clip(np.asarray(colour) * rng.uniform(0.35, 0.6), 0, 255)
    i, j = np.meshgrid(np.arange(n_cols), np.arange(n_rows), indexing="ij")
    u = np.stack([i + 0.25, i + 0.7, i + 0.7, i + 0.25], -1) / n_cols  # across the facade
    w = np.stack([j + 0.2, j + 0.2, j + 0.6, j + 0.6], -1) / n_rows  # 0 = facade top, 1 = its base
    top, base = ta + u * (tb - ta), ba + u * (bb - ba)
    quads = np.stack([xa + u * (xb - xa), top + w * 0.85 * (base - top)], -1).reshape(-1, 4, 2)
    sc.polys(quads, CONSTRUCTION, dark)


def _on_sidewalk(rng, h, v, y, side, road_x, base_x):
    """An x position on one sidewalk at row ``y`` (between road edge and building line)."""
    t = (y - h) / (HEIGHT - h)
    inner, outer = v + (road_x - v) * t, v + (base_x - v) * t
    lo, hi = sorted((inner, outer))
    lo, hi = max(lo, 2.0), min(hi, WIDTH - 3.0)  # keep it in the picture
    if lo > hi:  # this stretch of sidewalk is out of view: stand at the visible road edge
        lo = hi = min(max(inner, 2.0), WIDTH - 3.0)
    return lo + rng.uniform(0.1, 0.9) * (hi - lo)


def _tree(rng, sc, x, y, s):
    trunk = (90, 70, 50)
    size = rng.uniform(0.8, 1.6)  # young trees to old ones
    s = s * size
    sc.rect(x - max(1.0, 2.5 * s), y - 45 * s, x + max(1.0, 2.5 * s), y, NATURE, trunk)
    green = _jitter(rng, (70, 95, 45), 20)
    for _ in range(int(rng.integers(4, 9))):
        sc.ellipse(x + rng.uniform(-22, 22) * s, y - (50 + rng.uniform(0, 30)) * s,
                   rng.uniform(14, 26) * s, rng.uniform(12, 22) * s, NATURE, _jitter(rng, green, 12))


def _pole(rng, sc, x, y, s):
    grey = _jitter(rng, (105, 105, 110), 15)
    top = y - rng.uniform(70, 100) * s
    sc.rect(x, top, x + max(0.0, 2.5 * s - 1), y, OBJECT, grey)
    if rng.random() < 0.6:  # a sign or a traffic light on it
        box = rng.uniform(5, 10) * s
        colour = (40, 40, 40) if rng.random() < 0.5 else _jitter(rng, (40, 90, 170), 30)
        sc.rect(x - box / 2, top, x + box / 2 + 1, top + box * rng.uniform(1, 2), OBJECT, colour)


def _human(rng, sc, x, y, s):
    tall = rng.uniform(45, 62) * s
    clothes = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 15)
    sc.rect(x - 0.12 * tall, y - 0.48 * tall, x + 0.12 * tall, y, HUMAN, (35, 35, 45))  # legs
    sc.ellipse(x, y - 0.62 * tall, 0.16 * tall, 0.2 * tall, HUMAN, clothes)  # torso
    sc.ellipse(x, y - 0.9 * tall, 0.08 * tall, 0.09 * tall, HUMAN, _jitter(rng, (200, 160, 130), 30))  # head


def _car(rng, sc, x, y, s):
    w = rng.uniform(85, 120) * s
    body = _jitter(rng, _CAR[rng.integers(len(_CAR))], 12)
    sc.rect(x - w / 2, y - 0.42 * w, x + w / 2, y - 0.08 * w, VEHICLE, body)
    sc.poly([(x - 0.35 * w, y - 0.42 * w), (x - 0.25 * w, y - 0.62 * w), (x + 0.25 * w, y - 0.62 * w),
             (x + 0.35 * w, y - 0.42 * w)], VEHICLE, np.clip(body * 0.8, 0, 255))
    sc.rect(x - 0.28 * w, y - 0.58 * w, x + 0.28 * w, y - 0.44 * w, VEHICLE, (45, 55, 65))  # windows
    for wx in (x - 0.36 * w, x + 0.36 * w):
        sc.rect(wx - 0.09 * w, y - 0.14 * w, wx + 0.09 * w, y, VEHICLE, (20, 20, 20))  # wheels
    sc.rect(x - 0.45 * w, y - 0.3 * w, x - 0.36 * w, y - 0.24 * w, VEHICLE, (200, 40, 30))  # lights
    sc.rect(x + 0.36 * w, y - 0.3 * w, x + 0.45 * w, y - 0.24 * w, VEHICLE, (200, 40, 30))


def cityscapes_case(index: int, seed: int = 0):
    """One case: ``(image float32 [128,256,3] in [-1,1], label uint8 [128,256] category ids)``.

    Depends only on ``(seed, index)``.
    """
    rng = case_rng(seed, STREAM, index)
    sc = _Scene()
    h, v = rng.uniform(42, 64), rng.uniform(90, 166)
    sc.rect(0, 0, WIDTH, h, SKY, _jitter(rng, (190, 205, 222), 20))
    sc.rect(0, h, WIDTH, HEIGHT, FLAT, _jitter(rng, (150, 142, 140), 15))  # sidewalks
    road_l, road_r = v - rng.uniform(150, 260), v + rng.uniform(150, 260)  # road edges at the bottom row
    base_l, base_r = road_l - rng.uniform(60, 260), road_r + rng.uniform(60, 260)  # building lines
    sc.poly([(v - 1, h), (v + 1, h), (road_r, HEIGHT), (road_l, HEIGHT)], FLAT, _jitter(rng, (92, 92, 98), 12))
    for k in range(8):  # dashed centre line
        t0, t1 = (k + 0.2) / 8, (k + 0.5) / 8
        t0, t1 = t0 * t0, t1 * t1  # dashes grow towards the viewer
        xc = v + (0.5 * (road_l + road_r) - v) * np.array([t0, t1])
        y0, y1 = h + t0 * (HEIGHT - h), h + t1 * (HEIGHT - h)
        hw0, hw1 = 0.5 + 2.5 * t0, 0.5 + 2.5 * t1
        sc.poly([(xc[0] - hw0, y0), (xc[0] + hw0, y0), (xc[1] + hw1, y1), (xc[1] - hw1, y1)], FLAT, (200, 200, 195))
    sc.rect(v - rng.uniform(10, 40), h - rng.uniform(3, 12), v + rng.uniform(10, 40), h,
            CONSTRUCTION, _jitter(rng, (150, 150, 155), 20))  # far-away buildings at the horizon
    for side, base in ((-1, base_l), (1, base_r)):
        _facades(rng, sc, h, v, side, base)
        if rng.random() < 0.5:  # hedge / grass strip along the building line
            t = np.array([0.05, 1.0])
            xs = v + (base - v) * t
            ys = h + t * (HEIGHT - h)
            sc.poly([(xs[0], ys[0]), (xs[1], ys[1]), (xs[1], ys[1] - 18), (xs[0], ys[0] - 1)], NATURE,
                    _jitter(rng, (85, 110, 55), 20))

    things = []  # (foot row, kind, x); painted far to near so near things occlude far ones
    bonnet = rng.uniform(108, 120)
    for kind, count in (("tree", rng.integers(0, 5)), ("pole", rng.integers(1, 4)), ("human", rng.integers(0, 5)),
                        ("car", rng.integers(0, 5))):
        for _ in range(int(count)):
            y = h + rng.uniform(0.15, 0.95) * (bonnet - h)
            side = -1 if rng.random() < 0.5 else 1
            if kind == "car":
                t = (y - h) / (HEIGHT - h)
                x = v + (road_l - v) * t + rng.uniform(0.15, 0.85) * (road_r - road_l) * t
            else:
                x = _on_sidewalk(rng, h, v, y, side, road_l if side < 0 else road_r, base_l if side < 0 else base_r)
            things.append((y, kind, x))
    draw = {"tree": _tree, "pole": _pole, "human": _human, "car": _car}
    for y, kind, x in sorted(things, key=lambda t: t[0]):
        draw[kind](rng, sc, x, y, (y - h) / (HEIGHT - h))

    # the ego-vehicle's bonnet: void, as in every Cityscapes frame
    xs = np.linspace(0, WIDTH, 17)
    ys = bonnet + 10.0 * ((xs - WIDTH / 2) / (WIDTH / 2)) ** 2
    sc.poly(np.concatenate([np.stack([xs, ys], 1), [(WIDTH, HEIGHT), (0, HEIGHT)]]), VOID,
            _jitter(rng, (35, 35, 40), 10))

    smooth = soften(sc.rgb, 1, passes=1)  # 3x3 mean: takes the jaggies off the polygon edges
    light = 0.85 + 0.3 * smooth_field(rng, (HEIGHT, WIDTH), (2, 4))
    grain = 10.0 * pixel_noise(rng, (HEIGHT, WIDTH, 3))
    img = np.clip(smooth * light[..., None] + grain, 0.0, 255.0) / 127.5 - 1.0
    return img.astype(np.float32), sc.lab


def cityscapes_group(index: int) -> str:
    """Official split membership: every 7th case (index 1, 8, 15, ...) is 'val'.

    1/7 = 0.143 is close to Cityscapes' 500 / (2975 + 500) = 0.144, and does not depend on how
    many cases are made, so a case keeps its id and group in any subset.
    """
    return "val" if index % 7 == 1 else "train"


def cityscapes_case_id(index: int) -> str:
    """``syn_train_0001`` ... / ``syn_val_0001`` ...: numbered within the group, stable under n_cases."""
    if cityscapes_group(index) == "val":
        return f"syn_val_{index // 7 + 1:04d}"
    return f"syn_train_{index - (index + 5) // 7 + 1:04d}"
