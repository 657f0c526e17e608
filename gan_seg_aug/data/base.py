"""The one interface every data source goes through (real loaders and the embedded default).

A :class:`TaskData` holds a whole task at the paper's training resolution (SCR 256x256x1,
Cityscapes 128x256x3, H x W x C), images in [-1, 1] (paper §IV: "all input images were
intensity-normalized to a range of [-1, 1]"), labels as class indices, plus a way to get each
case's ground truth at its *native* resolution with its physical spacing, because the paper
evaluates there (§IV: outputs are upsampled bicubically "to the target resolution").
An own-data folder (``data/folder.py``) is a TaskData too: its ``task`` is the folder's TaskSpec, its
training resolution the spec's, its native ground truth the mask files.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np


def resize_labels(labels: np.ndarray, n_classes: int, height: int, width: int) -> np.ndarray:
    """The one rule that turns a label map into a label map of another size (every loader, every profile).

    Each output pixel takes the class covering most of its footprint (area fractions of each class with
    ``cv2.INTER_AREA``, centre-aligned like the images' area averaging); ties go to the higher class, so
    with two classes a pixel is foreground when at least half of it is.  Enlarging uses linear weights
    of the one-hot maps, the same vote.

    >>> resize_labels(np.array([[1, 1, 2, 2], [1, 0, 2, 0]], np.uint8), 3, 1, 2).tolist()
    [[1, 2]]
    >>> resize_labels(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.uint8), 2, 2, 2).tolist()
    [[1, 0], [0, 1]]
    """
    import cv2

    labels = np.asarray(labels)
    if labels.shape == (height, width):
        return labels.astype(np.uint8)
    shrink = height <= labels.shape[0] and width <= labels.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    best = np.full((height, width), -1.0, np.float32)
    out = np.zeros((height, width), np.uint8)
    for k in range(n_classes):  # one class at a time: memory stays one float image
        frac = cv2.resize((labels == k).astype(np.float32), (width, height), interpolation=interp)
        take = frac >= best
        out[take], best[take] = k, frac[take]
    return out


@dataclass
class TaskData:
    task: object  # "scr_lung" | "cityscapes" | the TaskSpec of any other task (tasks.task_spec reads all three)
    source: str  # "real" | "synthetic" | "folder"; recorded as `dataset` in every output
    case_ids: list[str]
    images: np.ndarray  # float32 [N, H, W, C] in [-1, 1]
    labels: np.ndarray  # uint8 [N, H, W] class indices (SCR: 1 = left lung; Cityscapes: category id 0..7)
    spacing_mm: np.ndarray  # float64 [N, 2]: (row, col) pixel spacing of the native ground truth
    native_label_fn: Callable[[int], np.ndarray]  # index -> uint8 [h, w] labels at native resolution
    groups: list[str] | None = None  # Cityscapes: the official split of each case ("train" / "val")
    origin: dict = field(default_factory=dict)  # where it came from: data_dir, format, notes

    def __post_init__(self):
        n = len(self.case_ids)
        if self.images.ndim != 4 or self.images.shape[0] != n:
            raise ValueError(f"images must be [N={n}, H, W, C], got {self.images.shape}")
        if self.labels.shape != self.images.shape[:3]:
            raise ValueError(f"labels {self.labels.shape} do not match images {self.images.shape[:3]}")
        if self.spacing_mm.shape != (n, 2):
            raise ValueError(f"spacing_mm must be [N={n}, 2], got {self.spacing_mm.shape}")
        if len(set(self.case_ids)) != n:
            raise ValueError("case_ids must be unique")

    def __len__(self) -> int:
        return len(self.case_ids)

    def native_label(self, i: int) -> np.ndarray:
        return self.native_label_fn(i)

    def indices(self, ids) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.case_ids)}
        missing = [c for c in ids if c not in pos]
        if missing:
            raise KeyError(f"case ids not in this dataset: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        return np.array([pos[c] for c in ids], dtype=np.int64)

    def resized(self, height: int, width: int) -> "TaskData":
        """The same cases at another training resolution (profiles ``cpu`` / ``smoke``).

        Images use area averaging (no aliasing when shrinking), labels the area vote of
        :func:`resize_labels` (the loaders' own rule: a nearest-neighbour pick would shift every mask by
        half a pixel).  Native ground truth and spacing are untouched: evaluation still happens there.
        """
        if (height, width) == self.images.shape[1:3]:
            return self
        import cv2

        interp_img = cv2.INTER_AREA if height <= self.images.shape[1] else cv2.INTER_LINEAR
        imgs = np.stack([cv2.resize(im, (width, height), interpolation=interp_img).reshape(height, width, -1)
                         for im in self.images]).astype(np.float32)
        from gan_seg_aug.tasks import task_spec

        k = task_spec(self.task).n_classes
        labs = np.stack([resize_labels(lb, k, height, width) for lb in self.labels]).astype(np.uint8)
        return replace(self, images=imgs, labels=labs)

    def limited(self, max_cases: int) -> "TaskData":
        """A deterministic subset of ``max_cases`` cases (smoke profile); 0 means all.

        With ``groups`` (Cityscapes' official train/val) each group keeps its share, so the
        paper's split procedure still finds both.
        """
        if not max_cases or max_cases >= len(self):
            return self
        if self.groups is None:
            idx = np.arange(max_cases)
        else:
            g = np.asarray(self.groups)
            names = sorted(set(self.groups), key=lambda n: (-int((g == n).sum()), n))
            # smaller groups get their (rounded, at least 1) share; the largest takes the rest, so
            # exactly max_cases are returned
            takes = {n: max(1, round(max_cases * int((g == n).sum()) / len(self))) for n in names[1:]}
            takes[names[0]] = max_cases - sum(takes.values())
            idx = np.array(sorted(i for n in names for i in np.flatnonzero(g == n)[:takes[n]].tolist()))
        fn = self.native_label_fn
        return replace(self, case_ids=[self.case_ids[i] for i in idx], images=self.images[idx],
                       labels=self.labels[idx], spacing_mm=self.spacing_mm[idx],
                       native_label_fn=lambda j, _fn=fn, _idx=idx: _fn(int(_idx[j])),
                       groups=None if self.groups is None else [self.groups[i] for i in idx])
