#!/usr/bin/env python
"""Small image + mask folders for the own-data tests and the worked example of docs/own_data.md.

``python tests/own_data_folder.py DIR [--kind binary|classes|colours] [--n N]`` writes ``DIR/images`` and
``DIR/masks`` (and ``DIR/colours.csv`` for ``--kind colours``), deterministically:

* ``binary``: grey PNG images with a bright blob, masks ``<stem>_mask.png`` with values {0, 255}; every
  third image is twice the size of its mask (as JSRT's 2048² radiographs and SCR's 1024² masks), and the
  image names are capitalised while the masks' are not (matching is by stem, case-insensitively);
* ``classes``: 1:2 (H x W) RGB JPEG images, label PNG masks ``<stem>-seg.png`` with 0 background,
  1 a red bar, 2 a blue disc;
* ``colours``: the same scenes as TIFF images with colour-coded masks and ``colours.csv`` (name,r,g,b).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("binary", "classes", "colours")
COLOUR_TABLE = (("background", (0, 0, 0)), ("bar", (220, 20, 60)), ("disc", (0, 0, 142)))


def _disc(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0


def binary(root, n: int = 32, side: int = 64, seed: int = 0) -> Path:
    """Grey images with one bright ellipse each; masks named ``<stem>_mask.png``."""
    root, rng = Path(root), np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        scale = 2 if i % 3 == 0 else 1  # image twice the mask's size: evaluation happens at the mask's
        cy, cx = rng.uniform(0.35, 0.65, 2) * side
        ry, rx = rng.uniform(0.15, 0.3, 2) * side
        mask = _disc(side, side, cy, cx, ry, rx)
        big = _disc(side * scale, side * scale, cy * scale, cx * scale, ry * scale, rx * scale)
        image = 60 + 120 * big + rng.normal(0, 12, big.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"Case_{i:03d}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"case_{i:03d}_mask.png")
    return root


def _scene(rng, h, w):
    labels = np.zeros((h, w), np.uint8)
    top, left = rng.integers(2, h // 2), rng.integers(2, w // 2)
    labels[top:top + h // 4, left:left + w // 3] = 1
    labels[_disc(h, w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.55, 0.85) * w, h / 5, h / 5)] = 2
    rgb = np.array([(90, 110, 90), (200, 60, 60), (60, 60, 200)], np.float64)[labels]
    return labels, np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)


def classes(root, n: int = 30, height: int = 40, seed: int = 1, colour_masks: bool = False) -> Path:
    """1:2 RGB scenes with 3 classes: JPEG + label PNGs ``<stem>-seg.png``, or TIFF + colour masks + CSV."""
    root, rng = Path(root), np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        labels, rgb = _scene(rng, height, 2 * height)
        if colour_masks:
            Image.fromarray(rgb).save(root / "images" / f"scene{i:02d}.tif")
            colours = np.array([c for _, c in COLOUR_TABLE], np.uint8)[labels]
            Image.fromarray(colours).save(root / "masks" / f"scene{i:02d}.png")
        else:
            Image.fromarray(rgb).save(root / "images" / f"scene{i:02d}.jpg", quality=95)
            Image.fromarray(labels).save(root / "masks" / f"scene{i:02d}-seg.png")
    if colour_masks:
        lines = ["name,r,g,b"] + [f"{name},{r},{g},{b}" for name, (r, g, b) in COLOUR_TABLE]
        (root / "colours.csv").write_text("\n".join(lines) + "\n")
    return root


def make(root, kind: str = "binary", n: int | None = None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {KINDS}")
    extra = {} if n is None else {"n": n}
    if kind == "binary":
        return binary(root, **extra)
    return classes(root, colour_masks=kind == "colours", **extra)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="where to write images/ and masks/")
    p.add_argument("--kind", choices=KINDS, default="binary")
    p.add_argument("--n", type=int, default=None, help="number of pairs (default 32 binary, 30 otherwise)")
    args = p.parse_args(argv)
    root = make(args.dir, args.kind, args.n)
    print(f"wrote {len(list((root / 'images').iterdir()))} {args.kind} pairs to {root}/images and {root}/masks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
