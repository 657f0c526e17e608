"""Drawing helpers shared by the figures of the thesis' chapter 5 (matplotlib, Agg, no pyplot state).

The figures themselves: generated pairs (Figs. 5.2 / 5.3 / 5.8 / 5.10) in :mod:`.sample_figures`,
results and predictions of finished U-Net runs (Figs. 5.4 / 5.5 / 5.9 / 5.11) in
:mod:`.result_figures`.  Both use the pyplot-free figures, the [-1, 1] image scaling and the label
colours defined here; notebooks display them with :func:`show`.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# Category colours: the Cityscapes colour of each category's most typical class (road, building,
# pole, vegetation, sky, person, car); void black.
CITYSCAPES_COLOURS = np.array([(0, 0, 0), (128, 64, 128), (70, 70, 70), (153, 153, 153), (107, 142, 35),
                               (70, 130, 180), (220, 20, 60), (0, 0, 142)], dtype=np.uint8)


def figure(rows: int, cols: int, size: float = 2.0, aspect: float = 1.0):
    """A pyplot-free Figure (renders with Agg) and its axes grid, ticks off; ``aspect`` = image H / W."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * size, rows * size * aspect + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def png_bytes(fig, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig, path) -> Path:
    """The figure written atomically as a PNG (results are never half-written)."""
    from gan_seg_aug.artifacts import atomic_write_bytes

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png_bytes(fig))
    return Path(path)


def show(fig, save_as=None):
    """Display a figure in a notebook as PNG (works headless) and optionally save it."""
    data = png_bytes(fig)
    if save_as:
        save_png(fig, save_as)
    try:
        from IPython.display import Image, display

        display(Image(data=data))
    except ImportError:  # plain Python: saving is all we can do
        pass
    return data


def to_display(image) -> np.ndarray:
    """[-1, 1] image ``[H, W, C]`` -> [0, 1] (grey images as ``[H, W]``)."""
    x = np.clip((np.asarray(image, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    return x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x


def colourise(labels, n_classes: int) -> np.ndarray:
    """Label map -> RGB uint8: SCR black / white, Cityscapes the category colours.

    >>> colourise(np.array([[0, 1]]), 2).tolist()
    [[[0, 0, 0], [255, 255, 255]]]
    """
    labels = np.asarray(labels).astype(np.int64)
    palette = CITYSCAPES_COLOURS if n_classes == 8 else (np.linspace(0, 255, n_classes)[:, None] * np.ones(3)).astype(
        np.uint8)
    return palette[np.clip(labels, 0, n_classes - 1)]


def draw_image(ax, img, title=None):
    """Draw ``img`` on ``ax``: floats in [0, 1] (grey ``[H, W]`` or RGB) or uint8 RGB, without smoothing."""
    img = np.asarray(img)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1 if img.dtype != np.uint8 else 255,
              interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=8)
