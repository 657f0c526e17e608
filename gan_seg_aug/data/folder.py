"""A folder of the user's own images and masks as a task ("your own data", docs/own_data.md).

The thesis' whole pipeline (§4.2, Fig. 4.2: split the data, train a GAN for every training set, train
U-Nets on mixes of real and generated pairs, evaluate at the native resolution) on any 2-D segmentation
dataset.  :func:`describe` reads the folder once and returns the task's
:class:`~gan_seg_aug.tasks.TaskSpec`; :func:`load` returns its :class:`~gan_seg_aug.data.base.TaskData`
(source ``"folder"``), cached like the paper datasets (``data/cache.py``).

Folder rules (docs/own_data.md):

* ``--images``: image files directly in the folder (PNG, JPEG, TIFF, BMP, GIF), grey or colour, any size;
  sizes may differ, the aspect ratio may not (one network shape is trained);
* ``--masks``: one mask per image (PNG, TIFF, BMP, GIF; JPEG is lossy and cannot hold labels), matched by
  file stem, case-insensitively, also when the mask adds a suffix (``<stem>_mask``, ``<stem>-seg``) or the
  image has a second extension (``JPCLN001.IMG.png`` and ``JPCLN001_mask.png``); a mask may have another
  size than its image (JSRT: 2048² radiographs, 1024² SCR masks), not another aspect ratio;
* mask values: :mod:`gan_seg_aug.data.folder_masks`.

The networks are the thesis family of the pairs' shape (§4.2.1 / §4.2.2): square -> the SCR networks
(Tables 4.1, 4.2), 1:2 (H x W) -> the Cityscapes ones (Tables 4.3, 4.4), at ``--side`` rows (default: the
largest side those networks take that no image or mask has to be enlarged to -- the thesis' 256 / 128 for
large images), scaled by the profiles exactly like the paper tasks (``config.net_scale``).  Images are
resized to that side and their min..max mapped to [-1, 1] (paper §IV); the mask file is the native ground
truth (§4.2: outputs upsampled "to the target resolution"), at ``--spacing-mm`` per mask pixel, or in pixels.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_seg_aug.data import folder_masks
from gan_seg_aug.data import base
from gan_seg_aug.data.base import TaskData, resize_labels
from gan_seg_aug.data.cache import cached_arrays
from gan_seg_aug.data.loaders import DataError
from gan_seg_aug.tasks import TASKS, TaskSpec, family_sides, normalise_task, task_spec

log = logging.getLogger(__name__)

SOURCE = "folder"  # TaskData.source, the `dataset` of every output and the run directories
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".gif")
SEPARATORS = "_-. "  # what may join an image stem and a mask suffix: <stem>_mask, <stem>-seg, <stem>.label
ASPECTS = {"1:1": "scr_lung", "1:2": "cityscapes"}  # pair shape (H:W) -> the family whose networks fit it
ASPECT_TOLERANCE = 0.02  # relative; rounding of odd sizes (1023x1024) is not a different shape
MIN_CASES = 9  # the 3-fold split needs at least 3 cases per fold (data/splits.py)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class FolderCase:
    case_id: str  # the image's file stem
    image: Path
    mask: Path


def _folder(path, flag: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{flag} {p}: directory not found")
    if not p.is_dir():
        raise DataError(f"{flag} {p}: not a directory")
    return p


def _listing(folder: Path, flag: str, suffixes, what: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    lossy = [p for p in files if what == "mask" and p.suffix.lower() in (".jpg", ".jpeg")]
    if lossy:
        raise DataError(f"{lossy[0]}: a JPEG mask; JPEG is lossy and cannot hold exact labels (save masks as PNG)")
    found = [p for p in files if p.suffix.lower() in suffixes]
    if not found:
        raise DataError(f"{flag} {folder}: no {what} files (expected {', '.join(suffixes)})")
    return found


def image_key(mask_stem: str, image_stems) -> str | None:
    """The image stem a mask's stem belongs to: itself, else its longest prefix ending at a separator.

    >>> image_key("a_1_mask", {"a", "a_1"}), image_key("a-seg", {"a"}), image_key("b", {"a"})
    ('a_1', 'a', None)
    """
    if mask_stem in image_stems:
        return mask_stem
    for i in range(len(mask_stem) - 1, 0, -1):
        if mask_stem[i] in SEPARATORS and mask_stem[:i] in image_stems:
            return mask_stem[:i]
    return None


def scan(images_dir, masks_dir) -> list[FolderCase]:
    """Pair every image with its mask; any file left without a partner is a :class:`DataError` naming it."""
    images_dir, masks_dir = _folder(images_dir, "--images"), _folder(masks_dir, "--masks")
    if images_dir.resolve() == masks_dir.resolve():
        raise DataError(f"--masks {masks_dir}: the same folder as --images; keep the masks in a folder of their own")
    by_stem: dict[str, Path] = {}
    for p in _listing(images_dir, "--images", IMAGE_SUFFIXES, "image"):
        if p.stem.lower() in by_stem:
            raise DataError(f"{p}: the same name as {by_stem[p.stem.lower()].name}; every image needs its own stem")
        by_stem[p.stem.lower()] = p
    # an image stem with a second extension (JPCLN001.IMG) also answers to its part before the dot, when unique
    bases = [k.split(".")[0] for k in by_stem]
    alias = {b: k for b, k in zip(bases, by_stem) if bases.count(b) == 1 and b not in by_stem}
    mask_of: dict[str, Path] = {}
    for m in _listing(masks_dir, "--masks", MASK_SUFFIXES, "mask"):
        key = image_key(m.stem.lower(), by_stem.keys() | alias.keys())
        key = alias.get(key, key)
        if key is None:
            raise DataError(f"{m}: no image in {images_dir} has this stem ({m.stem!r}, or it minus a suffix "
                            f"such as _mask)")
        if key in mask_of:
            raise DataError(f"{m}: a second mask for {by_stem[key].name} (the first is {mask_of[key].name})")
        mask_of[key] = m
    missing = [p for k, p in by_stem.items() if k not in mask_of]
    if missing:
        more = f"; {len(missing) - 1} more images have none" if len(missing) > 1 else ""
        raise DataError(f"{missing[0]}: no mask in {masks_dir} (expected {missing[0].stem}.png or "
                        f"{missing[0].stem}_mask.png){more}")
    cases = [FolderCase(p.stem, p, mask_of[k]) for k, p in sorted(by_stem.items())]
    if len(cases) < MIN_CASES:
        raise DataError(f"--images {images_dir}: {len(cases)} image+mask pairs; the 3-fold split (paper §V-A) "
                        f"needs at least {MIN_CASES}")
    return cases


def same_aspect(a_hw, b_hw) -> bool:
    return abs(a_hw[0] * b_hw[1] - a_hw[1] * b_hw[0]) <= ASPECT_TOLERANCE * a_hw[1] * b_hw[0]


def check_mask_shape(case: FolderCase, image_hw, mask_hw) -> None:
    if not same_aspect(image_hw, mask_hw):
        raise DataError(f"{case.mask}: {mask_hw[1]}x{mask_hw[0]} pixels but its image {case.image.name} is "
                        f"{image_hw[1]}x{image_hw[0]}: a mask may have another size than its image, not another "
                        f"aspect ratio")


def _headers(cases) -> tuple[list[tuple[int, int]], bool]:
    """Each image's (H, W) and whether all are grey -- from the file headers, no pixels decoded."""
    sizes, grey = [], True
    for c in cases:
        with folder_masks.open_image(c.image, "image") as im:
            sizes.append((im.size[1], im.size[0]))
            grey = grey and folder_masks.is_grey(im)
        if not same_aspect(sizes[-1], sizes[0]):
            (h, w), (h0, w0) = sizes[-1], sizes[0]
            raise DataError(f"{c.image}: {w}x{h} pixels but {cases[0].image.name} is {w0}x{h0}: images may differ "
                            f"in size, not in aspect ratio (one network shape is trained; crop or pad them)")
    return sizes, grey


def _classes(cases, sizes, classes, colours_csv):
    """(K, class names, colour table, the smallest mask height) -- every mask read once and checked."""
    table, names = None, None
    if colours_csv is not None:
        names, table = folder_masks.read_colour_table(colours_csv)
        if classes is not None and classes != len(names):
            raise ValueError(f"--classes {classes} but --colours {colours_csv} lists {len(names)} classes")
        classes = len(names)
    value_sets, rows = [], []
    for c, hw in zip(cases, sizes):
        raw = folder_masks.read_mask(c.mask, table)
        check_mask_shape(c, hw, raw.shape[:2])
        rows.append(raw.shape[0])
        if classes is not None:
            folder_masks.labels_of(raw, c.mask, classes, table)  # raises naming the file
        else:
            value_sets.append((c.mask, set(np.unique(raw).tolist())))
    k = classes if classes is not None else folder_masks.infer_classes(value_sets)
    if value_sets and set().union(*(v for _, v in value_sets)) == {0}:
        raise DataError(f"--masks {cases[0].mask.parent}: every mask is all 0 (background); nothing to segment")
    if names is None:
        names = ("background", "foreground") if k == 2 else tuple(f"class{i}" for i in range(k))
    return k, names, table, min(rows)


def default_name(images_dir, masks_dir) -> str:
    """``own_<the folders' common parent>``, e.g. ``own_my_data`` for my_data/images + my_data/masks."""
    common = Path(os.path.commonpath([Path(images_dir).resolve(), Path(masks_dir).resolve()]))
    return "own_" + (re.sub(r"[^a-z0-9]+", "_", common.name.lower()).strip("_") or "data")


def describe(images_dir, masks_dir, *, classes: int | None = None, colours=None, side: int | None = None,
             aspect: str = "auto", spacing_mm: float | None = None, name: str | None = None,
             largest_component: bool = False) -> TaskSpec:
    """The task of a folder (see the module docstring); every rule is checked here, before anything runs."""
    if aspect not in ("auto", *ASPECTS):
        raise ValueError(f"--aspect {aspect!r}: expected auto, {' or '.join(ASPECTS)}")
    if classes is not None and not 2 <= classes <= folder_masks.MAX_LABEL + 1:
        raise ValueError(f"--classes {classes}: expected 2..{folder_masks.MAX_LABEL + 1}")
    if spacing_mm is not None and not (math.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"--spacing-mm {spacing_mm}: expected a positive number (mm per mask pixel)")
    name = name or default_name(images_dir, masks_dir)
    if not NAME_RE.fullmatch(name) or name in TASKS:
        raise ValueError(f"--name {name!r}: expected letters, digits, _ . - (up to 64), not a paper task's name")
    cases = scan(images_dir, masks_dir)
    sizes, grey = _headers(cases)
    h0, w0 = sizes[0]
    family = ASPECTS[aspect] if aspect != "auto" else ("cityscapes" if w0 >= math.sqrt(2) * h0 else "scr_lung")
    reference, sides = task_spec(family), family_sides(family)
    if side is not None and side not in sides:
        shape = "square" if family == "scr_lung" else "1:2"
        raise ValueError(f"--side {side}: the thesis' {shape} networks take a side (rows) of "
                         f"{', '.join(map(str, sides))}")
    k, class_names, table, mask_rows = _classes(cases, sizes, classes, colours)
    if side is None:  # no image or mask enlarged beyond its pixels: the largest side at most the smallest one
        rows = min(mask_rows, *(h for h, _ in sizes))
        side = max([s for s in sides if s <= rows] or sides[:1])
    if largest_component and k != 2:
        raise ValueError("--largest-component applies to binary masks only (K = 2)")
    spec = TaskSpec(name, side, side * reference.width // reference.height, 1 if grey else 3, k, class_names,
                    reference.gan_batch, reference.unet_batch, family=family, metric="dice" if k == 2 else "miou",
                    valid_mixes=reference.valid_mixes, largest_component=bool(largest_component),
                    distance_unit="px" if spacing_mm is None else "mm",
                    spacing_mm=None if spacing_mm is None else float(spacing_mm), colours=table)
    log.info(f"{name}: {len(cases)} image+mask pairs ({'grey' if grey else 'RGB'}, {k} classes: "
             f"{', '.join(class_names)}); {family} networks at {spec.height}x{spec.width} (paper profile); "
             f"distances in {'mm' if spacing_mm else 'pixels'} of the masks")
    return spec


def build_arrays(cases: list[FolderCase], spec: TaskSpec) -> dict:
    n, h, w = len(cases), spec.height, spec.width
    images = np.empty((n, h, w, spec.image_channels), np.float32)
    labels = np.empty((n, h, w), np.uint8)
    for i, c in enumerate(cases):
        img = folder_masks.read_image(c.image, spec.image_channels)
        lab = folder_masks.read_labels(c.mask, spec.n_classes, spec.colours)
        check_mask_shape(c, img.shape[:2], lab.shape)
        images[i] = folder_masks.preprocess_image(img, h, w, c.image)
        labels[i] = resize_labels(lab, spec.n_classes, h, w)
    return {"images": images, "labels": labels, "spacing_mm": np.full((n, 2), spec.spacing_mm or 1.0),
            "case_ids": [c.case_id for c in cases], "groups": []}


def load(task, images_dir, masks_dir, *, cache_dir=None) -> TaskData:
    """The folder's pairs at the task's training side (paper profile), native masks read on demand."""
    task = normalise_task(task)
    spec = task_spec(task)
    if spec.family not in TASKS or spec.name in TASKS:
        raise ValueError(f"{spec.name}: not a folder task (describe the folder with data.folder.describe)")
    cases = scan(images_dir, masks_dir)
    files = [p for c in cases for p in (c.image, c.mask)]
    params = {"task_spec": dataclasses.asdict(spec), "intensity": "per-image min-max", "labels": "plurality"}
    arrays, info = cached_arrays(spec.name, SOURCE, files, params, lambda: build_arrays(cases, spec),
                                 cache_dir=cache_dir, code_files=[__file__, folder_masks.__file__, base.__file__])
    masks = [c.mask for c in cases]

    def native_label(i: int) -> np.ndarray:
        return folder_masks.read_labels(masks[i], spec.n_classes, spec.colours)

    unit = f"{spec.spacing_mm} mm per pixel" if spec.spacing_mm else "distances in pixels"
    origin = {"images_dir": str(Path(images_dir).resolve()), "masks_dir": str(Path(masks_dir).resolve()),
              "format": SOURCE, "n_cases": len(cases), "complete": True, "native": f"the mask files ({unit})",
              "cache_file": info["path"], "cache_hit": info["hit"]}
    return TaskData(task=task, source=SOURCE, case_ids=arrays["case_ids"], images=arrays["images"],
                    labels=arrays["labels"], spacing_mm=arrays["spacing_mm"], native_label_fn=native_label,
                    groups=None, origin=origin)
