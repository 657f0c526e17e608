"""Figures of a trained pair GAN's samples (thesis §5.1.3 / §5.2.3), as functions the notebooks call.

* :func:`pair_grid` -- generated image+mask pairs, "Odd columns show generated images, while even
  columns show the respective generated segmentation masks" (thesis Figs. 5.3 / 5.10; paper Fig. 2).
* :func:`raw_vs_thresholded` -- "Raw segmentation image sampled from the GAN in the intensity range
  of [-1, 1]" next to the mask "after thresholding" (Figs. 5.2 / 5.8).
* :func:`latent_interpolation` -- pairs along a straight line between two latent vectors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gan_seg_aug.data.mask_encoding import decode_mask
from gan_seg_aug.reporting.viz import colourise, draw_image, figure, to_display


def interpolate_latents(z0, z1, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from ``z0`` to ``z1`` (both ends included).

    >>> interpolate_latents(np.zeros(2), np.ones(2), 3).tolist()
    [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * np.asarray(z0, np.float64)[None] + t * np.asarray(z1, np.float64)[None]).astype(np.float32)


def generate(generator, z) -> tuple[np.ndarray, np.ndarray]:
    """Run the pair generator on latents ``z [N, d]``: (images ``[N, H, W, C]``, raw masks ``[N, H, W]``)."""
    out = np.asarray(generator(np.asarray(z, np.float32), training=False), dtype=np.float32)
    return out[..., :-1], out[..., -1]


def sample_pairs(generator, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs from ``z ~ N(0, 1)`` (thesis Table 4.1), reproducible by ``seed``."""
    latent_dim = int(generator.input_shape[-1])
    return generate(generator, np.random.default_rng(seed).standard_normal((n, latent_dim)))


def pair_grid(images, raw_masks, n_classes: int, pairs_per_row: int = 4, title=None):
    """Figs. 5.3 / 5.10: odd columns generated images, even columns their (thresholded) masks."""
    images = np.asarray(images)
    n = len(images)
    rows = max(1, -(-n // pairs_per_row))
    fig, axes = figure(rows, 2 * pairs_per_row, size=1.6, aspect=images.shape[1] / images.shape[2])
    for i in range(rows * pairs_per_row):
        r, c = divmod(i, pairs_per_row)
        ax_img, ax_mask = axes[r, 2 * c], axes[r, 2 * c + 1]
        if i >= n:
            ax_img.axis("off")
            ax_mask.axis("off")
            continue
        draw_image(ax_img, to_display(images[i]))
        ax_mask.imshow(colourise(decode_mask(raw_masks[i], n_classes), n_classes), interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def raw_vs_thresholded(raw_mask, n_classes: int, image=None):
    """Figs. 5.2 / 5.8: the generator's mask channel in [-1, 1] and the decoded label map."""
    cols = 3 if image is not None else 2
    fig, axes = figure(1, cols, size=2.6)
    ax = axes[0]
    if image is not None:
        draw_image(ax[0], to_display(image), "generated image")
    im = ax[cols - 2].imshow(np.asarray(raw_mask), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax[cols - 2].set_title("raw mask channel [-1, 1]", fontsize=8)
    fig.colorbar(im, ax=ax[cols - 2], fraction=0.046)
    rule = "threshold at 0" if n_classes == 2 else f"nearest of {n_classes} levels"
    ax[cols - 1].imshow(colourise(decode_mask(raw_mask, n_classes), n_classes), interpolation="nearest")
    ax[cols - 1].set_title(f"thresholded ({rule})", fontsize=8)
    return fig


def latent_interpolation(generator, n_classes: int, steps: int = 8, seed: int = 0):
    """Image row and mask row along a line between two random latent vectors."""
    latent_dim = int(generator.input_shape[-1])
    z0, z1 = np.random.default_rng(seed).standard_normal((2, latent_dim))
    images, masks = generate(generator, interpolate_latents(z0, z1, steps))
    fig, axes = figure(2, steps, size=1.4, aspect=images.shape[1] / images.shape[2])
    for i in range(steps):
        draw_image(axes[0, i], to_display(images[i]), f"t={i / (steps - 1):.2f}")
        axes[1, i].imshow(colourise(decode_mask(masks[i], n_classes), n_classes), interpolation="nearest")
    return fig


def newest_gan_dir(runs_dir) -> Path | None:
    """The most recently finished GAN run (``gan_*/done.json``, :mod:`layout`) under ``runs_dir``, or None."""
    done = sorted(Path(runs_dir).glob("*/*/*/fold*/gan_*/done.json"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent if done else None
