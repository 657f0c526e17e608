"""What a GAN run shows while it trains: labelled sample grids and the logged curve with its health.

The grids follow thesis Figs. 5.2 / 5.8 (generated image beside its mask); the curve is ``metrics.csv``
in the run directory (one row per progress line, kept across resumes), judged by :mod:`gan_health`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def sample_grid(generator, z, cols: int = 4, min_side: int = 128) -> np.ndarray:
    """uint8 BGR grid: each generated pair as image | decoded mask side by side, each labelled (thesis
    Figs. 5.2, 5.8); tiles are enlarged (nearest neighbour) to at least ``min_side`` pixels high."""
    import cv2

    x = np.asarray(generator(z, training=False), dtype=np.float32)
    u8 = np.clip((x + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    img = u8[..., :-1]
    img = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., ::-1]  # RGB -> BGR for cv2
    mask = np.repeat(u8[..., -1:], 3, axis=-1)
    zoom = max(1, -(-min_side // img.shape[1]))
    big = lambda a: cv2.resize(a, (a.shape[1] * zoom, a.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)  # noqa: E731
    gap, head = 2, 14

    def labelled(tile, text):
        bar = np.full((head, tile.shape[1], 3), 32, np.uint8)
        cv2.putText(bar, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        return np.concatenate([bar, tile], axis=0)

    tiles = [np.concatenate([labelled(big(im), f"{k}: image"), np.full((big(im).shape[0] + head, gap, 3), 128, np.uint8),
                             labelled(big(m), f"{k}: mask channel")], axis=1)
             for k, (im, m) in enumerate(zip(img, mask))]
    th, tw = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    grid = np.full((rows * (th + 2 * gap), cols * (tw + 4 * gap), 3), 32, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * (th + 2 * gap): r * (th + 2 * gap) + th, c * (tw + 4 * gap): c * (tw + 4 * gap) + tw] = t
    return grid


class TrainingCurve:
    """The logged losses of a run (``metrics.csv``, kept across resumes) and its health (:mod:`gan_health`)."""

    def __init__(self, path: Path, start: int, planned: int):
        import pandas as pd

        self.path, self.planned = Path(path), planned
        self.rows = pd.read_csv(self.path).to_dict("records") if self.path.exists() else []
        self.rows = [r for r in self.rows if r["iteration"] <= start]
        self.status = self.health()["status"]

    def health(self) -> dict:
        from gan_seg_aug.training.gan_health import assess

        return assess([r["iteration"] for r in self.rows], [r["wasserstein"] for r in self.rows],
                      [r["gp"] for r in self.rows], self.planned)

    def add(self, iteration: int, metrics: dict):
        import pandas as pd

        from gan_seg_aug.artifacts import atomic_write_csv

        self.rows.append({"iteration": iteration, **metrics})
        atomic_write_csv(self.path, pd.DataFrame(self.rows))
        health = self.health()
        changed, self.status = health["status"] != self.status, health["status"]
        return health, changed
