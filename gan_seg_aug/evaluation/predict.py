"""Network -> probabilities -> bicubic upsampling to the native resolution -> argmax.

Thesis §4.2 (and paper §III): "For the evaluation on the test set, and therefore the final
segmentation performance, we upsample the output of our segmentation networks using bicubic
upsampling to the target resolution."  What is upsampled is the network's *output*, i.e. the
per-class softmax probabilities (not the hard label map, which bicubic interpolation would only
blur); the label at native resolution is the argmax of the upsampled probabilities.

Alignment: ``cv2.resize`` maps output pixel ``x`` to input coordinate ``(x + 0.5) * in / out - 0.5``
(pixel *centres* aligned, the same convention as the area-averaging downsampling in
``TaskData.resized`` and the loaders), so an upsampled mask is not shifted by half a pixel.
``tests/test_evaluate.py`` checks this with a disc that is downsampled and upsampled again.
"""
from __future__ import annotations

import numpy as np


def predict_probabilities(model, images, batch_size: int = 8) -> np.ndarray:
    """Softmax probabilities ``[N, h, w, K]`` (float32) at the network's resolution.

    ``model`` maps ``[B, h, w, C]`` images in [-1, 1] to logits ``[B, h, w, K]`` (``build_unet``);
    the softmax is taken here, in float32, because the network has no final activation.
    """
    return np.concatenate(list(iter_probabilities(model, images, batch_size)), axis=0)


def iter_probabilities(model, images, batch_size: int = 8):
    """Like :func:`predict_probabilities`, one batch at a time (Cityscapes' 500 test images at
    8 classes would otherwise hold every probability map in memory at once)."""
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}")
    want = tuple(model.input_shape[1:])
    if tuple(images.shape[1:]) != want:
        raise ValueError(f"images are {images.shape[1:]} (H, W, C) but the model expects {want}: evaluate at the "
                         f"resolution the network was trained at (TaskData.resized)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size], training=False)
        yield tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()


def upsample_probabilities(probs, out_hw) -> np.ndarray:
    """Bicubic (``cv2.INTER_CUBIC``, pixel-centre aligned) upsampling of one ``[h, w, K]`` map to
    ``out_hw = (H, W)``.  Values may overshoot [0, 1] slightly (cubic kernel); only the argmax is used.

    >>> p = np.zeros((2, 2, 2), np.float32); p[..., 0] = 1; p[0, 0] = (0, 1)
    >>> upsample_probabilities(p, (4, 4)).argmax(-1)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]])
    """
    import cv2

    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3:
        raise ValueError(f"probabilities must be [h, w, K] for one image, got shape {probs.shape}")
    h, w = int(out_hw[0]), int(out_hw[1])
    if h < 1 or w < 1:
        raise ValueError(f"target size must be positive (H, W), got {out_hw}")
    if probs.shape[:2] == (h, w):
        return probs.copy()
    out = cv2.resize(probs, (w, h), interpolation=cv2.INTER_CUBIC)  # cv2 takes (width, height)
    return out.reshape(h, w, probs.shape[2])  # cv2 drops a single channel axis


def upsample_labels(probs, out_hw) -> np.ndarray:
    """Labels ``uint8 [H, W]``: argmax of the bicubically upsampled probabilities (thesis §4.2).

    For two classes this equals thresholding the upsampled foreground probability at 0.5, because
    interpolation is linear and keeps the two probabilities summing to 1.
    """
    return upsample_probabilities(probs, out_hw).argmax(axis=-1).astype(np.uint8)
