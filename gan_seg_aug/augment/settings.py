"""What standard augmentation a run uses: one settings type, the paper's presets, one name.

Free of TensorFlow, so the run catalogue, the sweep and ``--help`` can use it without importing it.
The ops that apply these settings are in :mod:`gan_seg_aug.augment.ops` (thesis §2.7; paper §V-A
Table I, §V-B Table III).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

SPLINE_ORDERS = (1, 2, 3)  # B-spline orders SimpleITK's BSplineTransform offers and ops.elastic draws
ELASTIC_BACKENDS = ("fast", "simpleitk")  # how the B-spline field is evaluated; same field (tested)


@dataclass(frozen=True)
class AugParams:
    """Standard augmentation settings; all zeros / False is no augmentation.

    ``translate_std`` and ``elastic_std`` are in pixels of the training resolution; use
    :meth:`scaled` when training below the paper's 256 px side.
    """

    shift_std: float = 0.0  # additive intensity offset, one N(0, shift_std) scalar per image
    scale_std: float = 0.0  # multiplicative intensity factor, one N(1, scale_std) scalar per image
    translate_std: float = 0.0  # px, N(0, translate_std) per axis, rounded to whole pixels
    flip: bool = False  # horizontal flip with probability 0.5
    elastic_std: float = 0.0  # px, N(0, elastic_std) per control point and component
    elastic_mesh: int = 3  # B-spline mesh per axis (the authors' code: 3 x 3)
    elastic_order: int = 3  # cubic B-spline
    elastic_backend: str = "fast"  # "simpleitk": SimpleITK resamples (slow, the stack's reference); same field

    def __post_init__(self):
        for name in ("shift_std", "scale_std", "translate_std", "elastic_std"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"AugParams.{name}={v!r}: expected a finite number >= 0")
        if not isinstance(self.flip, (bool, np.bool_)):
            raise ValueError(f"AugParams.flip={self.flip!r}: expected True or False")
        mesh, order = self.elastic_mesh, self.elastic_order
        if isinstance(mesh, bool) or not isinstance(mesh, (int, np.integer)) or mesh < 1:
            raise ValueError(f"AugParams.elastic_mesh={mesh!r}: expected a whole number >= 1")
        if isinstance(order, bool) or order not in SPLINE_ORDERS:
            raise ValueError(f"AugParams.elastic_order={order!r}: expected one of {SPLINE_ORDERS}")
        if self.elastic_backend not in ELASTIC_BACKENDS:
            raise ValueError(f"AugParams.elastic_backend={self.elastic_backend!r}: expected one of {ELASTIC_BACKENDS}")

    @property
    def is_identity(self) -> bool:
        return (self.shift_std == 0 and self.scale_std == 0 and self.translate_std == 0 and not self.flip
                and self.elastic_std == 0)

    def scaled(self, factor: float) -> "AugParams":
        """Pixel parameters times ``factor`` (e.g. 0.5 for a 128 px profile); intensities unchanged.

        >>> AUG_PRESETS["scr_lung"].scaled(0.5).translate_std
        5.0
        """
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ValueError(f"AugParams.scaled({factor!r}): expected a positive factor (training side / 256)")
        return dataclasses.replace(self, translate_std=self.translate_std * factor,
                                   elastic_std=self.elastic_std * factor)


# Paper bold rows.  Table I (SCR): shift 0.05, scale 0.05, translation 10 px, elastic 10 px; thesis
# Table 5.1 prints 0.50 for shift/scale, contradicted by the paper (docs/decisions.md §6).
# SCR has no flip: the left lung would become a right lung.  Table III (Cityscapes): flip only.
AUG_PRESETS: dict[str, AugParams] = {
    "scr_lung": AugParams(shift_std=0.05, scale_std=0.05, translate_std=10.0, flip=False, elastic_std=10.0),
    "cityscapes": AugParams(flip=True),
}


def aug_name(aug: AugParams) -> str:
    """The spelled-out name of a setting in run names (backend and mesh are not part of it).

    >>> aug_name(AugParams(shift_std=0.05, scale_std=0.05, translate_std=10, elastic_std=10))
    'aug_sh0.05_sc0.05_tr10_el10_flip0'
    """
    return (f"aug_sh{aug.shift_std:g}_sc{aug.scale_std:g}_tr{aug.translate_std:g}"
            f"_el{aug.elastic_std:g}_flip{int(aug.flip)}")


def is_preset(aug: AugParams | None, task: str) -> bool:
    """Is ``aug`` the paper's bold row (what ``--aug`` selects)?  The backend does not count."""
    return aug is not None and dataclasses.replace(aug, elastic_backend="fast") == AUG_PRESETS[task]


def aug_identity(aug: AugParams | None) -> dict | None:
    """The part of a setting that changes a result (recorded in configs and summaries): all of it
    but ``elastic_backend``, whose two paths evaluate the same field (an execution detail)."""
    if aug is None:
        return None
    d = dataclasses.asdict(aug)
    d.pop("elastic_backend")
    return d
