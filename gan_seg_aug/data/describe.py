"""What a loaded dataset looks like: counts, split, intensities, mask statistics, a contact sheet.

Used by ``python -m gan_seg_aug.data describe`` to check a data directory before spending hours
on training: that the paper's counts and split sizes (§V-A: 135/30/82-83 per fold; §V-B:
2575/400/500) came out, that images span [-1, 1], and that the masks sit where they should
(SCR: the patient's left lung lies on the image's *right*).
"""
from __future__ import annotations

import io
import json

import cv2
import numpy as np

from gan_seg_aug.artifacts import atomic_write_bytes
from gan_seg_aug.config import task_spec
from gan_seg_aug.data.base import TaskData

# Overlay colours (RGB) for the 8 Cityscapes categories: each category's most common official colour.
CATEGORY_RGB = ((0, 0, 0), (128, 64, 128), (70, 70, 70), (220, 220, 0), (107, 142, 35), (70, 130, 180),
                (220, 20, 60), (0, 0, 142))
LUNG_RGB = (255, 40, 40)


def _stats(x: np.ndarray) -> dict:
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": float(x.std())}


def centroid_side(label: np.ndarray) -> str:
    """Side of the image (not of the patient) holding the foreground's centroid.

    >>> [centroid_side(np.array(row)) for row in ([[0, 0, 1, 1]], [[1, 0, 0, 0]], [[0, 0, 0, 0]])]
    ['right', 'left', 'none']
    """
    cols = np.nonzero(label > 0)[1]
    if cols.size == 0:
        return "none"
    return "right" if cols.mean() + 0.5 > label.shape[1] / 2 else "left"


def summarise(data: TaskData, split: dict, split_path=None) -> dict:
    """A JSON-ready description of ``data`` and its split (case IDs per fold and subset)."""
    spec = task_spec(data.task)
    n = len(data)
    fg = (data.labels > 0).reshape(n, -1).mean(1)
    class_frac = np.bincount(data.labels.ravel(), minlength=spec.n_classes) / data.labels.size
    sides = [centroid_side(lb) for lb in data.labels]
    per_case_min, per_case_max = data.images.reshape(n, -1).min(1), data.images.reshape(n, -1).max(1)
    return {
        "task": data.task, "source": data.source, "n_cases": n,
        "groups": None if data.groups is None else {g: data.groups.count(g) for g in sorted(set(data.groups))},
        "image_shape": list(data.images.shape[1:]),
        "origin": data.origin,
        "intensity": {**_stats(data.images),
                      "per_channel_mean": [float(v) for v in data.images.mean(axis=(0, 1, 2))],
                      "per_case_min": _stats(per_case_min), "per_case_max": _stats(per_case_max)},
        "masks": {"class_fraction": {name: float(f) for name, f in zip(spec.class_names, class_frac)},
                  "foreground_fraction": _stats(fg),
                  "centroid_side": {s: sides.count(s) for s in ("left", "right", "none")},
                  "native_spacing_mm": _stats(data.spacing_mm)},
        "split": {"path": None if split_path is None else str(split_path), "seed": split.get("seed"),
                  "sizes": [{"fold": f["fold"], **{k: len(f[k]) for k in ("train", "val", "test")}}
                            for f in split["folds"]],
                  "folds": split["folds"]},
    }


def format_text(s: dict) -> str:
    lines = [f"{s['task']} ({s['source']}): {s['n_cases']} cases, image {tuple(s['image_shape'])}"]
    if s["groups"]:
        lines.append("official splits: " + ", ".join(f"{g} {k}" for g, k in s["groups"].items()))
    for f in s["split"]["sizes"]:
        lines.append(f"fold {f['fold']}: train {f['train']}, val {f['val']}, test {f['test']}")
    if s["split"]["path"]:
        lines.append(f"split file: {s['split']['path']}")
    i = s["intensity"]
    lines.append(f"intensity: min {i['min']:.3f} max {i['max']:.3f} mean {i['mean']:.3f} std {i['std']:.3f}")
    m = s["masks"]
    lines.append("class fraction: " + ", ".join(f"{k} {v:.3f}" for k, v in m["class_fraction"].items()))
    ff = m["foreground_fraction"]
    lines.append(f"foreground fraction per case: mean {ff['mean']:.3f} (min {ff['min']:.3f}, max {ff['max']:.3f})")
    cs = m["centroid_side"]
    lines.append(f"foreground centroid on image left {cs['left']}, right {cs['right']}, none {cs['none']}"
                 + (" (the left lung should be on the image's right)" if s["task"] == "scr_lung" else ""))
    if s.get("contact_sheet"):
        lines.append(f"contact sheet: {s['contact_sheet']}")
    return "\n".join(lines)


def _tile(data: TaskData, i: int) -> np.ndarray:
    img = np.clip((data.images[i] + 1.0) * 127.5, 0, 255).astype(np.uint8)
    rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img.copy()
    lab = data.labels[i]
    if data.task == "scr_lung":
        colour = np.zeros_like(rgb)
        colour[lab > 0] = LUNG_RGB
        mask = lab > 0
    else:
        colour = np.asarray(CATEGORY_RGB, np.uint8)[lab]
        mask = np.ones(lab.shape, bool)
    out = rgb.copy()
    out[mask] = (0.6 * rgb[mask] + 0.4 * colour[mask]).astype(np.uint8)
    if data.task == "scr_lung":
        contours, _ = cv2.findContours((lab > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, LUNG_RGB, 1)
    cv2.putText(out, data.case_ids[i][:28], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def contact_sheet(data: TaskData, n: int = 16, cols: int = 4) -> np.ndarray:
    """RGB uint8 grid of up to ``n`` cases (evenly spread over the set) with their masks overlaid."""
    idx = np.unique(np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int))
    tiles = [_tile(data, int(i)) for i in idx]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.zeros((rows * (h + 2), min(cols, len(tiles)) * (w + 2), 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (h + 2): r * (h + 2) + h, c * (w + 2): c * (w + 2) + w] = t
    return sheet


def write_png(path, rgb: np.ndarray, meta: dict):
    """Write ``rgb`` as PNG, atomically, with ``meta`` (provenance) in a text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("gan_seg_aug", json.dumps(meta, default=str))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", pnginfo=info)
    return atomic_write_bytes(path, buf.getvalue())
