"""JSRT chest radiographs with SCR left-lung masks (paper §V-A; thesis §5.1.1).

Paper §V-A: "The SCR Lung Database is a dataset consisting of 247 chest X-ray images, taken from
the JSRT database.  Its image resolution is [2048 x 2048] at a physical resolution of 0.175 mm
per pixel [...].  For our evaluation, we chose the task of segmenting the left lung" and "All
images are downsampled to a resolution of [256 x 256] before we use them for training".
§IV: "all input images were intensity-normalized to a range of [-1, 1]".

Inputs, found by case ID (JPCLN001-154, JPCNN001-093) anywhere under the data directory:

* images: the original JSRT ``<ID>.IMG`` (2048x2048 big-endian 16-bit words holding 12-bit
  values, no header) or PNG conversions ``<ID>.IMG.png`` / ``<ID>.png`` (8-bit palette PNGs
  get their palette applied).  In the raw files a *higher* value is *darker* (film optical
  density), so raw values are inverted; every format then shows the usual radiograph look:
  bones and heart bright, lungs dark (docs/decisions.md §5, "JSRT intensity direction").
* masks: SCR ``<ID>.gif`` (1024x1024, 0.35 mm, values {0,255}) inside a folder named
  ``left lung`` (SCR's own ``fold1/masks/left lung/``) or ``left_lung``.  Other structures
  (heart, clavicles, right lung) are ignored.  "Left" is the patient's left: the image's right.

Preprocessing (docs/decisions.md §5): images area-averaged 2048 -> 256, then each image's
min..max mapped to [-1, 1]; labels are the 1024² mask area-averaged to 256² and thresholded at
0.5 (majority of the 4x4 block).  Native ground truth stays the 1024² GIF, read on demand.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from gan_seg_aug.data import base
from gan_seg_aug.data.base import TaskData, resize_labels
from gan_seg_aug.data.cache import cached_arrays
from gan_seg_aug.data.loaders import DataError, check_paper_count

log = logging.getLogger(__name__)

JSRT_SIDE, JSRT_SPACING_MM, JSRT_MAX = 2048, 0.175, 4095
IMG_BYTES = JSRT_SIDE * JSRT_SIDE * 2  # 8,388,608
MASK_SIDE, MASK_SPACING_MM = 1024, 0.35
TRAIN_SIDE = 256
_ID_RE = re.compile(r"^JPC(?:LN(?:0\d\d|1[0-4]\d|15[0-4])|NN0(?:[0-8]\d|9[0-3]))$")
_STRUCTURES = {"left lung", "right lung", "heart", "left clavicle", "right clavicle", "masks", "mask"}
_IMAGE_SUFFIXES = ((".img", 0), (".img.png", 1), (".png", 2))  # (suffix, preference: lower wins)
PARAMS = {"side": TRAIN_SIDE, "image_resize": "area", "intensity": "per-image min-max",
          "label_resize": "area>=0.5", "raw_img": "inverted 12-bit"}


def case_id(stem: str) -> str | None:
    """The JSRT case ID for a file stem, or None.

    >>> case_id("jpcln001"), case_id("JPCNN093"), case_id("JPCNN094"), case_id("JPCLN000")
    ('JPCLN001', 'JPCNN093', None, None)
    """
    s = stem.upper()
    return s if _ID_RE.match(s) and not s.endswith("000") else None


@dataclass(frozen=True)
class ScrCase:
    case_id: str
    image: Path
    mask: Path


def _norm_dir(name: str) -> str:
    return name.lower().replace("_", " ")


def _list_ids(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:20]) + (f" ... and {len(ids) - 20} more" if len(ids) > 20 else "")


def scan(data_dir: Path) -> list[ScrCase]:
    """Pair every JSRT image with its SCR left-lung mask, searching ``data_dir`` recursively."""
    images: dict[str, list[tuple[int, Path]]] = {}
    masks: dict[str, list[Path]] = {}
    for root, _dirs, files in os.walk(data_dir, followlinks=True):
        rel_dirs = [_norm_dir(d) for d in Path(root).relative_to(data_dir).parts]
        for name in files:
            low = name.lower()
            if low.endswith(".gif"):
                cid = case_id(name[:-4])
                if cid and rel_dirs and rel_dirs[-1] == "left lung":
                    masks.setdefault(cid, []).append(Path(root) / name)
                continue
            if _STRUCTURES.intersection(rel_dirs):
                continue  # converted masks of any structure are not images
            for suffix, pref in _IMAGE_SUFFIXES:
                if low.endswith(suffix):
                    cid = case_id(name[: -len(suffix)])
                    if cid:
                        images.setdefault(cid, []).append((pref, Path(root) / name))
                    break
    if not images and not masks:
        raise DataError(f"--data-dir {data_dir}: no JSRT images (<ID>.IMG, <ID>.IMG.png or <ID>.png with IDs "
                        "JPCLN001-154 / JPCNN001-093) and no SCR masks ('left lung' or 'left_lung' folders "
                        "holding <ID>.gif) found")
    no_mask, no_image = set(images) - set(masks), set(masks) - set(images)
    if no_mask:
        raise DataError(f"--data-dir {data_dir}: {len(no_mask)} JSRT images have no SCR left-lung mask "
                        f"(<ID>.gif in a 'left lung' or 'left_lung' folder): {_list_ids(no_mask)}")
    if no_image:
        raise DataError(f"--data-dir {data_dir}: {len(no_image)} SCR left-lung masks have no JSRT image "
                        f"(<ID>.IMG, <ID>.IMG.png or <ID>.png): {_list_ids(no_image)}")
    cases, preferred_raw = [], 0
    for cid in sorted(images):
        found = sorted(images[cid])
        best = [p for pref, p in found if pref == found[0][0]]
        if len(best) > 1 or len(masks[cid]) > 1:
            dup = best if len(best) > 1 else masks[cid]
            raise DataError(f"--data-dir {data_dir}: case {cid} is there more than once: "
                            f"{', '.join(map(str, dup))}; keep one copy")
        preferred_raw += len(found) > 1
        cases.append(ScrCase(cid, best[0], masks[cid][0]))
    if preferred_raw:
        log.info(f"note: {preferred_raw} cases have both a JSRT .IMG and a PNG conversion; using the original .IMG")
    return cases


def read_image(path: Path) -> np.ndarray:
    """One radiograph as float32 [2048, 2048], display convention (dense = bright).

    Raw ``.IMG``: big-endian 12-bit values where higher means darker, so ``4095 - raw``.
    PNG: the palette is applied (``convert("L")``), 16-bit greys are kept as they are.
    """
    if path.name.lower().endswith(".img"):
        size = path.stat().st_size
        if size != IMG_BYTES:
            raise DataError(f"{path}: truncated or not a JSRT .IMG file: {size:,} bytes, expected {IMG_BYTES:,} "
                            "(2048x2048 big-endian 16-bit words, no header)")
        raw = np.fromfile(path, dtype=">u2").reshape(JSRT_SIDE, JSRT_SIDE)
        if raw.max() > JSRT_MAX:
            raise DataError(f"{path}: values up to {int(raw.max())}, expected 12-bit values 0..{JSRT_MAX} "
                            "(a JSRT .IMG is big-endian; is this file byte-swapped?)")
        return (JSRT_MAX - raw.astype(np.float32)).astype(np.float32)
    try:
        with Image.open(path) as im:
            if im.size != (JSRT_SIDE, JSRT_SIDE):
                raise DataError(f"{path}: image is {im.size[0]}x{im.size[1]} pixels, expected "
                                f"{JSRT_SIDE}x{JSRT_SIDE} (JSRT)")
            if im.mode.startswith("I"):
                return np.asarray(im).astype(np.float32)
            return np.asarray(im.convert("L"), dtype=np.float32)
    except DataError:
        raise
    except Exception as e:  # Pillow: OSError / SyntaxError / ValueError for damaged files
        raise DataError(f"{path}: unreadable or truncated image ({type(e).__name__}: {e})") from None


def read_mask(path: Path) -> np.ndarray:
    """One SCR mask as uint8 {0, 1} [1024, 1024]."""
    try:
        with Image.open(path) as im:
            if im.size != (MASK_SIDE, MASK_SIDE):
                raise DataError(f"{path}: mask is {im.size[0]}x{im.size[1]} pixels, expected "
                                f"{MASK_SIDE}x{MASK_SIDE} (SCR)")
            arr = np.asarray(im.convert("L"))
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: unreadable or truncated mask ({type(e).__name__}: {e})") from None
    values = set(np.unique(arr).tolist())
    if not (values <= {0, 255} or values <= {0, 1}):
        raise DataError(f"{path}: mask values {sorted(values)[:10]}, expected a binary mask {{0, 255}}")
    return (arr > 0).astype(np.uint8)


def preprocess_image(img: np.ndarray, side: int = TRAIN_SIDE) -> np.ndarray:
    """Area-average to ``side``², then map this image's min..max to [-1, 1].

    >>> preprocess_image(np.array([[0, 5], [10, 20]], np.float32), 2).tolist()
    [[-1.0, -0.5], [0.0, 1.0]]
    """
    small = cv2.resize(img.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    lo, hi = float(small.min()), float(small.max())
    if hi <= lo:
        raise DataError("image is constant after downsampling; not a radiograph")
    return (2.0 * (small - lo) / (hi - lo) - 1.0).astype(np.float32)


def downsample_mask(mask: np.ndarray, side: int = TRAIN_SIDE) -> np.ndarray:
    """Area fraction of lung in each output pixel, >= 0.5 is lung (majority of the block).

    >>> downsample_mask(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.uint8), 2).tolist()
    [[1, 0], [0, 1]]
    """
    return resize_labels((np.asarray(mask) > 0).astype(np.uint8), 2, side, side)


def build_arrays(cases: list[ScrCase], side: int = TRAIN_SIDE) -> dict:
    n = len(cases)
    images = np.empty((n, side, side, 1), np.float32)
    labels = np.empty((n, side, side), np.uint8)
    for i, c in enumerate(cases):
        img = read_image(c.image)
        try:
            images[i, ..., 0] = preprocess_image(img, side)
        except DataError as e:
            raise DataError(f"{c.image}: {e}") from None
        labels[i] = downsample_mask(read_mask(c.mask), side)
    return {"images": images, "labels": labels, "spacing_mm": np.full((n, 2), MASK_SPACING_MM),
            "case_ids": [c.case_id for c in cases], "groups": []}


def _warn_if_inverted(images: np.ndarray, labels: np.ndarray) -> None:
    """Lungs hold air, so they are darker than the rest of a radiograph; if most are not, the
    source was probably stored inverted (e.g. a PNG conversion of raw values without a palette)."""
    img = images[..., 0]
    lung = (img * labels).sum((1, 2)) / np.maximum(labels.sum((1, 2)), 1)
    rest = (img * (1 - labels)).sum((1, 2)) / np.maximum((1 - labels).sum((1, 2)), 1)
    bright = int((lung > rest).sum())
    if bright > len(img) / 2:
        log.warning(f"in {bright} of {len(img)} radiographs the left lung is brighter than the rest of the image; "
                    "the images look inverted (expected: bones bright, lungs dark; see docs/data.md)")


def load(data_dir: Path, *, allow_partial: bool = False, cache_dir=None) -> TaskData:
    cases = scan(data_dir)
    full = check_paper_count("scr_lung", [c.case_id for c in cases], allow_partial=allow_partial,
                             where=f"--data-dir {data_dir}")
    files = [p for c in cases for p in (c.image, c.mask)]
    arrays, info = cached_arrays("scr_lung", "jsrt_scr", files, PARAMS, lambda: build_arrays(cases),
                                 cache_dir=cache_dir, code_files=[__file__, base.__file__])
    _warn_if_inverted(arrays["images"], arrays["labels"])
    masks = [c.mask for c in cases]
    kinds = sorted({"IMG" if c.image.name.lower().endswith(".img") else "PNG" for c in cases})
    origin = {"data_dir": str(data_dir), "format": "jsrt_scr", "image_formats": kinds, "complete": full,
              "cache_file": info["path"], "cache_hit": info["hit"],
              "native": f"SCR left-lung GIF {MASK_SIDE}x{MASK_SIDE} at {MASK_SPACING_MM} mm"}
    return TaskData(task="scr_lung", source="real", case_ids=arrays["case_ids"], images=arrays["images"],
                    labels=arrays["labels"], spacing_mm=arrays["spacing_mm"],
                    native_label_fn=lambda i: read_mask(masks[i]), groups=None, origin=origin)
