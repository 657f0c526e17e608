"""Reading the images and masks of a folder dataset (``data/folder.py``): pixels, label conventions,
the colour table and the resizing to the training side.

Masks hold, per file, one of three conventions (docs/own_data.md):

* binary: values ``{0, 255}`` or ``{0, 1}`` -- foreground is everything > 0, as the SCR masks (§5.1.1);
* class labels ``0..K-1`` (``--classes K``, or K = the largest label + 1);
* colours, one per class, listed in a CSV (``--colours``: ``name,r,g,b`` lines, class 0 first).

A palette image (PNG / GIF mode ``P``) with a grey palette is read through its palette (SCR's GIFs hold
{0, 255} that way); with a colour palette its indices are the labels (the VOC convention), unless a colour
table is given.  Every value outside the convention is a :class:`DataError` naming the file.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from gan_seg_aug.data.loaders import DataError

MAX_LABEL = 63  # larger label values are taken for a wrong convention (a {0, 128, 255} mask), not 64+ classes
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def open_image(path: Path, what: str) -> Image.Image:
    """The file opened lazily (header only); unreadable files are a :class:`DataError`."""
    try:
        return Image.open(path)
    except Exception as e:  # Pillow: OSError / SyntaxError / ValueError for damaged or foreign files
        raise DataError(f"{path}: unreadable {what} ({type(e).__name__}: {e})") from None


def _grey_palette(im: Image.Image) -> bool:
    pal = np.asarray(im.getpalette() or [0, 0, 0], dtype=np.int32)
    rgb = pal[: len(pal) // 3 * 3].reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


def is_grey(im: Image.Image) -> bool:
    """Grey modes, and palette images whose palette is grey (JSRT's 8-bit PNGs)."""
    return im.mode in GREY_MODES or (im.mode in ("P", "PA") and _grey_palette(im))


def _pixels(path: Path, what: str, convert=None) -> np.ndarray:
    with open_image(path, what) as im:
        try:
            if convert is None:
                convert = im.mode if im.mode.startswith(("I", "F")) else ("L" if is_grey(im) else "RGB")
            return np.asarray(im if im.mode == convert else im.convert(convert))
        except Exception as e:  # truncated data shows when the pixels are decoded
            raise DataError(f"{path}: unreadable or truncated {what} ({type(e).__name__}: {e})") from None


def read_image(path: Path, channels: int) -> np.ndarray:
    """One image as float32 ``[h, w, channels]`` in its own value range (grey broadcast to RGB when the
    folder holds colour images; alpha dropped)."""
    x = _pixels(path, "image").astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[-1] == channels:
        return x
    if x.shape[-1] == 1:
        return np.repeat(x, channels, axis=-1)
    raise DataError(f"{path}: a colour image, but this task was described from grey images (one channel)")


def read_mask(path: Path, colours=None) -> np.ndarray:
    """The mask's raw values: ``[h, w]`` integers, or ``[h, w, 3]`` uint8 RGB when a colour table is used."""
    if colours is not None:
        return _pixels(path, "mask", "RGB")
    with open_image(path, "mask") as im:
        palette_labels = im.mode in ("P", "PA") and not is_grey(im)  # a colour palette: its indices are the labels
    x = _pixels(path, "mask", "P" if palette_labels else None)
    if x.ndim == 3:
        if not (x == x[..., :1]).all():
            raise DataError(f"{path}: a colour mask; give the class colours with --colours CSV "
                            f"(lines name,r,g,b), or save the masks as class labels 0..K-1")
        x = x[..., 0]
    if x.dtype.kind == "f":
        if not np.array_equal(x, np.round(x)):
            raise DataError(f"{path}: mask holds fractional values; expected whole-number labels")
        x = x.astype(np.int64)
    return x.astype(np.int64)


def read_colour_table(path) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    """``(class names, RGB colours)`` from ``name,r,g,b`` lines (a header line is allowed); class 0 first."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"--colours {path}: file not found")
    names, colours = [], []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            try:
                rgb = tuple(int(v) for v in row[1:4])
                ok = len(row) == 4 and all(0 <= v <= 255 for v in rgb) and row[0]
            except ValueError:
                ok = False
            if not ok:
                if number == 1 and not names:
                    continue  # a header line such as name,r,g,b
                raise DataError(f"--colours {path}, line {number}: expected name,r,g,b with r, g, b in 0..255, "
                                f"got {','.join(row)!r}")
            if rgb in colours:
                raise DataError(f"--colours {path}, line {number}: colour {rgb} is already class {colours.index(rgb)}")
            names.append(row[0])
            colours.append(rgb)
    if len(names) < 2:
        raise DataError(f"--colours {path}: {len(names)} classes listed, need at least 2 (background first)")
    return tuple(names), tuple(colours)


def labels_of(raw: np.ndarray, path: Path, n_classes: int, colours=None) -> np.ndarray:
    """uint8 class labels ``[h, w]`` of a raw mask, or a :class:`DataError` naming ``path``."""
    if colours is not None:
        table = np.array([r << 16 | g << 8 | b for r, g, b in colours], dtype=np.int64)
        code = (raw[..., 0].astype(np.int64) << 16) | (raw[..., 1].astype(np.int64) << 8) | raw[..., 2]
        order = np.argsort(table)
        pos = np.clip(np.searchsorted(table[order], code), 0, len(table) - 1)
        known = table[order][pos] == code
        if not known.all():
            bad = sorted({(int(c) >> 16, int(c) >> 8 & 255, int(c) & 255) for c in np.unique(code[~known])[:3]})
            raise DataError(f"{path}: mask colours {bad} are not in the --colours table {list(colours)}")
        return order[pos].astype(np.uint8)
    values = set(np.unique(raw).tolist())
    if n_classes == 2:
        if not (values <= {0, 255} or values <= {0, 1}):
            raise DataError(f"{path}: mask values {sorted(values - {0, 1, 255})[:10] or sorted(values)} unexpected: "
                            f"expected binary masks ({{0, 255}} or {{0, 1}}), or --classes K for K labels")
        return (raw > 0).astype(np.uint8)
    bad = sorted(v for v in values if not 0 <= v < n_classes)
    if bad:
        raise DataError(f"{path}: mask values {bad[:10]} outside the class labels 0..{n_classes - 1}")
    return raw.astype(np.uint8)


def read_labels(path: Path, n_classes: int, colours=None) -> np.ndarray:
    """A mask file's class labels (uint8 ``[h, w]``): the native ground truth of its case."""
    return labels_of(read_mask(path, colours), path, n_classes, colours)


def infer_classes(value_sets: list[tuple[Path, set]]) -> int:
    """K from the values of every mask: 2 when each mask is binary ({0, 255} or {0, 1}), else the largest
    label + 1.  A folder that is binary {0, 255} but for a few files names the first of those."""
    union = set().union(*(v for _, v in value_sets))
    if all(v <= {0, 255} or v <= {0, 1} for _, v in value_sets):
        return 2
    if 255 in union and any(v <= {0, 255} and 255 in v for _, v in value_sets):
        path, v = next((p, v) for p, v in value_sets if not v <= {0, 255})
        raise DataError(f"{path}: mask values {sorted(v - {0, 255})[:10]} unexpected in a folder of binary "
                        f"{{0, 255}} masks; pass --classes K if the masks hold class labels 0..K-1")
    if max(union) > MAX_LABEL or min(union) < 0:
        path, v = next((p, v) for p, v in value_sets if max(v) > MAX_LABEL or min(v) < 0)
        raise DataError(f"{path}: mask values {sorted(x for x in v if not 0 <= x <= MAX_LABEL)[:10]} unexpected: "
                        f"expected binary masks ({{0, 255}} or {{0, 1}}) or class labels 0..K-1 (--classes K), "
                        f"or give a colour table with --colours CSV")
    return int(max(union)) + 1


def _interpolation(src_hw, dst_hw) -> int:
    # area averaging when shrinking (no aliasing), as TaskData.resized; linear when enlarging
    return cv2.INTER_AREA if dst_hw[0] <= src_hw[0] and dst_hw[1] <= src_hw[1] else cv2.INTER_LINEAR


def preprocess_image(img: np.ndarray, height: int, width: int, path: Path) -> np.ndarray:
    """Resize to the training side, then map this image's min..max to [-1, 1] (paper §IV, as the SCR loader).

    >>> preprocess_image(np.array([[0, 5], [10, 20]], np.float32)[..., None], 2, 2, Path("x")).ravel().tolist()
    [-1.0, -0.5, 0.0, 1.0]
    """
    small = cv2.resize(img, (width, height), interpolation=_interpolation(img.shape[:2], (height, width)))
    small = small.reshape(height, width, img.shape[-1])
    lo, hi = float(small.min()), float(small.max())
    if hi <= lo:
        raise DataError(f"{path}: image is constant after resizing to {height}x{width}; nothing to segment")
    return (2.0 * (small - lo) / (hi - lo) - 1.0).astype(np.float32)
