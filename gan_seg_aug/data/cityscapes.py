"""Cityscapes at 256x128 with the 8 official categories (paper §V-B; thesis §5.2.1).

Paper §V-B: "This dataset consists of 2975 training images and 500 validation images with
finely annotated segmentation masks [...] we decided to only do segmentation of the 8 object
groups ('categories') defined in the Cityscapes dataset" and "we downscaled the resolution of
all input images to [256 x 128 x 3]" (W x H x C).

Two layouts are recognised under the data directory (the official one wins when both exist):

* official: ``leftImg8bit/<split>/<city>/<id>_leftImg8bit.png`` with
  ``gtFine/<split>/<city>/<id>_gtFine_labelIds.png``, split in {train, val} (test has no labels
  and is ignored).  labelIds map to categories through :data:`LABELS`; images are area-averaged
  to 256x128, label maps reduced by plurality (the category covering most of each output
  pixel).  Native ground truth: the category map at the file's own resolution.
* pix2pix: ``train/<n>.jpg`` and ``val/<n>.jpg``, 512x256 JPEGs, photo left, the official
  *colour* label right, both squashed to 256x256.  Colours decode to the category of the nearest
  official colour, then rows are halved by nearest neighbour; the photo is area-averaged to
  256x128.  The originals are gone, so the native ground truth is the decoded 256x128 map
  (lossy: JPEG, squash, colour quantisation; ~97% agreement; docs/data.md).

Photos are 8-bit, so intensities are normalised with the fixed map x / 127.5 - 1 (§IV "[-1, 1]").
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

TRAIN_H, TRAIN_W = 128, 256
N_CATEGORIES = 8
SPLITS = ("train", "val")

# The project's own copy of the official Cityscapes label table (Cordts et al. 2016,
# cityscapesScripts helpers/labels.py): labelId, name, categoryId, colour (R, G, B).
# Categories: 0 void, 1 flat, 2 construction, 3 object, 4 nature, 5 sky, 6 human, 7 vehicle.
LABELS = (
    (0, "unlabeled", 0, (0, 0, 0)), (1, "ego vehicle", 0, (0, 0, 0)),
    (2, "rectification border", 0, (0, 0, 0)), (3, "out of roi", 0, (0, 0, 0)),
    (4, "static", 0, (0, 0, 0)), (5, "dynamic", 0, (111, 74, 0)), (6, "ground", 0, (81, 0, 81)),
    (7, "road", 1, (128, 64, 128)), (8, "sidewalk", 1, (244, 35, 232)), (9, "parking", 1, (250, 170, 160)),
    (10, "rail track", 1, (230, 150, 140)), (11, "building", 2, (70, 70, 70)), (12, "wall", 2, (102, 102, 156)),
    (13, "fence", 2, (190, 153, 153)), (14, "guard rail", 2, (180, 165, 180)), (15, "bridge", 2, (150, 100, 100)),
    (16, "tunnel", 2, (150, 120, 90)), (17, "pole", 3, (153, 153, 153)), (18, "polegroup", 3, (153, 153, 153)),
    (19, "traffic light", 3, (250, 170, 30)), (20, "traffic sign", 3, (220, 220, 0)),
    (21, "vegetation", 4, (107, 142, 35)), (22, "terrain", 4, (152, 251, 152)), (23, "sky", 5, (70, 130, 180)),
    (24, "person", 6, (220, 20, 60)), (25, "rider", 6, (255, 0, 0)), (26, "car", 7, (0, 0, 142)),
    (27, "truck", 7, (0, 0, 70)), (28, "bus", 7, (0, 60, 100)), (29, "caravan", 7, (0, 0, 90)),
    (30, "trailer", 7, (0, 0, 110)), (31, "train", 7, (0, 80, 100)), (32, "motorcycle", 7, (0, 0, 230)),
    (33, "bicycle", 7, (119, 11, 32)), (-1, "license plate", 7, (0, 0, 142)),
)
CATEGORY_OF_LABEL = {lid: cat for lid, _, cat, _ in LABELS}
_LUT = np.full(256, 255, np.uint8)  # 255 = not a labelId that appears in labelIds PNGs
for _lid, _, _cat, _ in LABELS:
    if _lid >= 0:
        _LUT[_lid] = _cat
# Shared colours (black for void ids 0-4, grey for pole/polegroup, car/license plate) always
# belong to one category, so colour -> category is well defined.
_COLOUR_CAT = {colour: cat for _, _, cat, colour in LABELS}
COLOURS = np.array(list(_COLOUR_CAT), np.float32)
COLOUR_CATEGORIES = np.array(list(_COLOUR_CAT.values()), np.uint8)
PARAMS = {"height": TRAIN_H, "width": TRAIN_W, "image_resize": "area", "intensity": "x/127.5-1",
          "official_labels": "plurality", "pix2pix_labels": "nearest colour, then nearest rows"}


def labels_to_categories(label_ids: np.ndarray, path="labelIds") -> np.ndarray:
    """Official labelIds -> categoryIds; any other id is an error naming ``path`` and the ids.

    >>> labels_to_categories(np.array([[0, 7, 11], [23, 24, 33]])).tolist()
    [[0, 1, 2], [5, 6, 7]]
    """
    ids = np.asarray(label_ids)
    unknown = np.unique(ids[(ids < 0) | (ids > 255)]).tolist()
    cats = _LUT[np.clip(ids, 0, 255)]
    unknown += np.unique(ids[cats == 255]).tolist()
    if unknown:
        raise DataError(f"{path}: unknown Cityscapes label ids {sorted(set(unknown))[:20]}; expected labelIds "
                        "0..33 (a *_gtFine_labelIds.png file)")
    return cats


def downsample_categories(cats: np.ndarray, height: int = TRAIN_H, width: int = TRAIN_W) -> np.ndarray:
    """Plurality vote (:func:`~gan_seg_aug.data.base.resize_labels`): each output pixel takes the category
    covering most of its footprint.

    >>> downsample_categories(np.array([[1, 1, 2, 2], [1, 3, 2, 2]], np.uint8), 1, 2).tolist()
    [[1, 2]]
    """
    return resize_labels(cats, N_CATEGORIES, height, width)


def decode_colours(rgb: np.ndarray) -> np.ndarray:
    """Colour label image -> categories by the nearest official colour (Euclidean RGB).

    >>> decode_colours(np.array([[[128, 64, 128], [70, 130, 175], [5, 3, 140]]], np.uint8)).tolist()
    [[1, 5, 7]]
    """
    x = rgb.reshape(-1, 3).astype(np.float32)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every c, so it drops out of argmin
    d = (COLOURS ** 2).sum(1) - 2.0 * x @ COLOURS.T
    return COLOUR_CATEGORIES[d.argmin(-1)].reshape(rgb.shape[:-1])


def normalise_rgb(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def _open(path: Path, what: str):
    try:
        im = Image.open(path)
        im.load()
        return im
    except Exception as e:
        raise DataError(f"{path}: unreadable or truncated {what} ({type(e).__name__}: {e})") from None


def read_photo(path: Path) -> np.ndarray:
    with _open(path, "image") as im:
        w, h = im.size
        if w != 2 * h or h < TRAIN_H:
            raise DataError(f"{path}: image is {w}x{h} pixels, expected a 2:1 Cityscapes frame of at least "
                            f"{TRAIN_W}x{TRAIN_H} (official 2048x1024)")
        return np.asarray(im.convert("RGB"))


def read_label_ids(path: Path) -> np.ndarray:
    with _open(path, "label image") as im:
        if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            raise DataError(f"{path}: label image has mode {im.mode}, expected a single-channel "
                            "*_gtFine_labelIds.png (not the _color.png)")
        return np.asarray(im).astype(np.int64)


@dataclass(frozen=True)
class CityCase:
    case_id: str
    group: str  # official split: "train" | "val"
    image: Path
    label: Path | None  # None for pix2pix (label is in the image)


def scan_official(data_dir: Path) -> list[CityCase]:
    images, labels = {}, {}
    for root, _dirs, files in os.walk(data_dir, followlinks=True):
        r = Path(root)
        if r.parent.name not in SPLITS or r.parent.parent.name not in ("leftImg8bit", "gtFine"):
            continue
        for name in files:
            if name.endswith("_leftImg8bit.png") and r.parent.parent.name == "leftImg8bit":
                cid = name[: -len("_leftImg8bit.png")]
                images.setdefault(cid, []).append((r.parent.name, r / name))
            elif name.endswith("_gtFine_labelIds.png") and r.parent.parent.name == "gtFine":
                labels.setdefault(name[: -len("_gtFine_labelIds.png")], []).append(r / name)
    dups = sorted(c for c, v in {**images, **labels}.items() if len(v) > 1)
    if dups:
        raise DataError(f"--data-dir {data_dir}: Cityscapes frames found more than once: {dups[:10]}; keep one copy")
    no_label, no_image = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    if no_label:
        raise DataError(f"--data-dir {data_dir}: {len(no_label)} Cityscapes images have no "
                        f"gtFine/<split>/<city>/<id>_gtFine_labelIds.png: {no_label[:20]}")
    if no_image:
        raise DataError(f"--data-dir {data_dir}: {len(no_image)} gtFine labelIds files have no "
                        f"leftImg8bit/<split>/<city>/<id>_leftImg8bit.png: {no_image[:20]}")
    cases = [CityCase(cid, images[cid][0][0], images[cid][0][1], labels[cid][0]) for cid in images]
    return sorted(cases, key=lambda c: (SPLITS.index(c.group), c.case_id))


def scan_pix2pix(data_dir: Path) -> dict[Path, list[CityCase]]:
    """pix2pix roots (folders holding ``train/<n>.jpg`` / ``val/<n>.jpg``) and their cases."""
    roots: dict[Path, list[CityCase]] = {}
    for root, _dirs, files in os.walk(data_dir, followlinks=True):
        r = Path(root)
        if r.name not in SPLITS:
            continue
        nums = sorted(int(f[:-4]) for f in files if re.fullmatch(r"\d+\.jpg", f))
        roots.setdefault(r.parent, []).extend(
            CityCase(f"p2p_{r.name}_{n}", r.name, r / f"{n}.jpg", None) for n in nums)
    return {k: sorted(v, key=lambda c: (SPLITS.index(c.group), int(c.case_id.rsplit("_", 1)[1])))
            for k, v in roots.items() if v}


def build_official(cases: list[CityCase]) -> dict:
    n = len(cases)
    images = np.empty((n, TRAIN_H, TRAIN_W, 3), np.float32)
    labels = np.empty((n, TRAIN_H, TRAIN_W), np.uint8)
    for i, c in enumerate(cases):
        photo = read_photo(c.image)
        cats = labels_to_categories(read_label_ids(c.label), c.label)
        if cats.shape != photo.shape[:2]:
            raise DataError(f"{c.label}: label is {cats.shape[1]}x{cats.shape[0]} pixels but its image {c.image} is "
                            f"{photo.shape[1]}x{photo.shape[0]}; expected the same size")
        images[i] = normalise_rgb(cv2.resize(photo, (TRAIN_W, TRAIN_H), interpolation=cv2.INTER_AREA))
        labels[i] = downsample_categories(cats)
    return {"images": images, "labels": labels, "spacing_mm": np.ones((n, 2)),
            "case_ids": [c.case_id for c in cases], "groups": [c.group for c in cases]}


def split_pix2pix(arr: np.ndarray, path) -> tuple[np.ndarray, np.ndarray]:
    """(photo 256x128 RGB uint8, categories 256x128) from one pix2pix side-by-side frame."""
    h, w = arr.shape[:2]
    if w != 2 * h or h < TRAIN_H:
        raise DataError(f"{path}: image is {w}x{h} pixels, expected a pix2pix pair (photo | colour label) "
                        "of 512x256")
    photo, colour = arr[:, : w // 2], arr[:, w // 2:]
    photo = cv2.resize(photo, (TRAIN_W, TRAIN_H), interpolation=cv2.INTER_AREA)
    cats = cv2.resize(decode_colours(colour), (TRAIN_W, TRAIN_H), interpolation=cv2.INTER_NEAREST)
    return photo, cats


def build_pix2pix(cases: list[CityCase]) -> dict:
    n = len(cases)
    images = np.empty((n, TRAIN_H, TRAIN_W, 3), np.float32)
    labels = np.empty((n, TRAIN_H, TRAIN_W), np.uint8)
    for i, c in enumerate(cases):
        with _open(c.image, "image") as im:
            arr = np.asarray(im.convert("RGB"))
        photo, labels[i] = split_pix2pix(arr, c.image)
        images[i] = normalise_rgb(photo)
    return {"images": images, "labels": labels, "spacing_mm": np.ones((n, 2)),
            "case_ids": [c.case_id for c in cases], "groups": [c.group for c in cases]}


def load(data_dir: Path, *, allow_partial: bool = False, cache_dir=None) -> TaskData:
    official, p2p = scan_official(data_dir), scan_pix2pix(data_dir)
    if official:
        fmt, cases, build = "cityscapes_official", official, build_official
        if p2p:
            log.info(f"note: using the official Cityscapes layout under {data_dir}; ignoring the pix2pix files "
                     f"in {', '.join(map(str, p2p))}")
    elif len(p2p) == 1:
        fmt, build = "cityscapes_pix2pix", build_pix2pix
        cases = next(iter(p2p.values()))
    elif p2p:
        raise DataError(f"--data-dir {data_dir}: several pix2pix Cityscapes folders found "
                        f"({', '.join(map(str, p2p))}); point --data-dir at one of them")
    else:
        raise DataError(f"--data-dir {data_dir}: no Cityscapes data found; expected leftImg8bit/{{train,val}}/<city>/"
                        "*_leftImg8bit.png with gtFine/{train,val}/<city>/*_gtFine_labelIds.png, or the pix2pix "
                        "variant train/<n>.jpg, val/<n>.jpg")
    groups = [c.group for c in cases]
    full = check_paper_count("cityscapes", groups, allow_partial=allow_partial, where=f"--data-dir {data_dir}")
    if not all(g in groups for g in SPLITS):
        raise DataError(f"--data-dir {data_dir}: found {groups.count('train')} official train and "
                        f"{groups.count('val')} val frames; the paper's split needs both (val is the test set)")
    files = [p for c in cases for p in (c.image, c.label) if p is not None]
    arrays, info = cached_arrays("cityscapes", fmt, files, PARAMS, lambda: build(cases), cache_dir=cache_dir,
                                 code_files=[__file__, base.__file__])
    if fmt == "cityscapes_official":
        label_files = [c.label for c in cases]
        native = lambda i: labels_to_categories(read_label_ids(label_files[i]), label_files[i])  # noqa: E731
        native_note = "category map at the labelIds file's own resolution"
    else:
        small = arrays["labels"]
        native = lambda i: small[i].copy()  # noqa: E731
        native_note = "decoded 256x128 category map (pix2pix: the full-resolution originals are not available)"
    origin = {"data_dir": str(data_dir), "format": fmt, "complete": full, "cache_file": info["path"],
              "cache_hit": info["hit"], "native": native_note}
    return TaskData(task="cityscapes", source="real", case_ids=arrays["case_ids"], images=arrays["images"],
                    labels=arrays["labels"], spacing_mm=arrays["spacing_mm"], native_label_fn=native,
                    groups=arrays["groups"], origin=origin)
