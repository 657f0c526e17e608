"""The embedded default data: deterministic procedural stand-ins for SCR Lung and Cityscapes.

Every command must run with no dataset on disk, so ``load_task(task)`` without a data directory
falls back to these.  They come through the same :class:`TaskData` interface as the real
loaders, at the paper's training resolutions (paper §V-A: SCR at 256x256; §V-B: Cityscapes at
"[256 x 128 x 3]", W x H x C), and are recorded as ``source="synthetic"`` so no number made from
them can be mistaken for a result on the real data.

The split sizes follow the real datasets: 247 SCR cases (paper §V-A) and 347 Cityscapes-like
cases whose official-split membership ("train" / "val") is in the proportion 2975 : 500 of the
real set (§V-B), so the paper's split procedure (``splits.make_split``) applies unchanged.

Determinism: case ``i`` depends only on ``(seed, i)`` (see ``synthetic_common``), so the same seed
gives the same bytes on every machine, any case can be regenerated alone
(:func:`scr_lung_case`, :func:`cityscapes_case`), and a smaller ``n_cases`` is a prefix of a
larger one.

>>> d = make_scr_lung(n_cases=3)
>>> d.case_ids, d.images.shape, d.labels.dtype, d.spacing_mm[0].tolist()
(['SYN001', 'SYN002', 'SYN003'], (3, 256, 256, 1), dtype('uint8'), [1.4, 1.4])
>>> c = make_cityscapes(n_cases=9)
>>> c.case_ids[:3], c.groups[:3], c.images.shape
(['syn_train_0001', 'syn_val_0001', 'syn_train_0002'], ['train', 'val', 'train'], (9, 128, 256, 3))
"""
from __future__ import annotations

import numpy as np

from gan_seg_aug.data.base import TaskData
from gan_seg_aug.data.synthetic_city import cityscapes_case, cityscapes_case_id, cityscapes_group
from gan_seg_aug.data.synthetic_scr import SPACING_MM, scr_lung_case, scr_lung_case_id

__all__ = ["make_scr_lung", "make_cityscapes", "scr_lung_case", "cityscapes_case", "scr_lung_case_id",
           "cityscapes_case_id", "cityscapes_group"]

GENERATOR = "gan_seg_aug.data.synthetic"


def _check(n_cases, seed, minimum: int, what: str):
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < minimum:
        raise ValueError(f"{what}: n_cases must be an integer >= {minimum}, got {n_cases!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{what}: seed must be an integer >= 0, got {seed!r}")


def _label_lookup(labels: np.ndarray):
    # The native ground truth *is* the training-resolution label map; hand out copies so an
    # evaluation that edits its array cannot change the dataset.
    return lambda i: labels[int(i)].copy()


def make_scr_lung(n_cases: int = 247, seed: int = 0) -> TaskData:
    """``n_cases`` synthetic chest radiographs, ids ``SYN001`` ..., label 1 = the left lung.

    Spacing 1.4 mm for every case: the JSRT 2048 px at 0.175 mm (paper §V-A) seen at 256 px.
    """
    _check(n_cases, seed, 1, "make_scr_lung")
    return _assemble("scr_lung", n_cases, seed, (256, 256, 1), scr_lung_case, scr_lung_case_id,
                     np.full((n_cases, 2), SPACING_MM, np.float64), None)


def make_cityscapes(n_cases: int = 347, seed: int = 0) -> TaskData:
    """``n_cases`` synthetic street scenes with the 8 categories, every 7th in the 'val' group.

    ``n_cases`` must be at least 2 so that both official groups exist (the split needs both).
    Spacing is 1.0 "mm" per pixel: Cityscapes has no physical spacing and is scored by mIoU.
    """
    _check(n_cases, seed, 2, "make_cityscapes")
    return _assemble("cityscapes", n_cases, seed, (128, 256, 3), cityscapes_case, cityscapes_case_id,
                     np.ones((n_cases, 2), np.float64), [cityscapes_group(i) for i in range(n_cases)])


def _assemble(task, n_cases, seed, shape, case, case_id, spacing, groups) -> TaskData:
    """Draw every case of one stand-in and wrap it as the task's TaskData."""
    images = np.empty((n_cases, *shape), np.float32)
    labels = np.empty((n_cases, *shape[:2]), np.uint8)
    for i in range(n_cases):
        images[i], labels[i] = case(i, seed)
    return TaskData(
        task=task, source="synthetic", case_ids=[case_id(i) for i in range(n_cases)], images=images, labels=labels,
        spacing_mm=spacing, native_label_fn=_label_lookup(labels), groups=groups,
        origin={"format": "synthetic", "generator": GENERATOR, "seed": int(seed)})
