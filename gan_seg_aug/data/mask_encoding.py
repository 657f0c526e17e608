"""How a label map becomes the GAN's mask channel, and back (thesis §4.1, Figs. 5.2 and 5.8).

The pair GAN sees one extra channel holding the mask in the image's range [-1, 1]:
class ``k`` of ``K`` classes is stored as the level ``-1 + 2k/(K-1)``.  For SCR (K=2) the levels
are -1 (background) and +1 (lung) and decoding is the thesis' threshold at 0 (§5.1.2).  For
Cityscapes (K=8) the 8 categories are 8 evenly spaced levels and decoding quantises to the
nearest level (Fig. 5.8 "thresholding the GAN output").

>>> import numpy as np
>>> encode_mask(np.array([0, 1]), 2).tolist()
[-1.0, 1.0]
>>> decode_mask(np.array([-0.2, 0.0, 0.3]), 2).tolist()  # threshold at 0 (x > 0 is lung)
[0, 0, 1]
>>> decode_mask(encode_mask(np.arange(8), 8), 8).tolist()
[0, 1, 2, 3, 4, 5, 6, 7]
"""
from __future__ import annotations

import numpy as np


def encode_mask(labels, n_classes: int) -> np.ndarray:
    """Integer labels (any shape) -> float32 levels in [-1, 1]."""
    labels = np.asarray(labels)
    return (-1.0 + 2.0 * labels.astype(np.float32) / (n_classes - 1)).astype(np.float32)


def decode_mask(channel, n_classes: int) -> np.ndarray:
    """Float levels -> uint8 labels.  Two classes: ``x > 0``; otherwise the nearest level."""
    x = np.asarray(channel, dtype=np.float32)
    if n_classes == 2:
        return (x > 0).astype(np.uint8)
    k = np.floor((np.clip(x, -1.0, 1.0) + 1.0) * 0.5 * (n_classes - 1) + 0.5)
    return np.clip(k, 0, n_classes - 1).astype(np.uint8)
