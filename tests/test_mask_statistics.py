"""Mask statistics of the GAN quality report (evaluation/mask_statistics.py): hand-drawn cases."""
import numpy as np
import pytest

from gan_seg_aug.evaluation import mask_statistics as MS


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- masks

def _mask(rows):
    return np.array([[c == "#" for c in r] for r in rows])


def test_connected_components_hand_drawn():
    assert MS.connected_components(_mask(["....", "....", "...."])) == 0
    assert MS.connected_components(_mask([".##.", ".###", "...."])) == 1
    assert MS.connected_components(_mask(["##..", "....", "..##"])) == 2
    # touching only at a corner: one component with 8-connectivity (4-connectivity would say 2)
    assert MS.connected_components(_mask(["##..", "##..", "..##", "..##"])) == 1
    assert MS.connected_components(np.array([[0, 2], [0, 0]])) == 1  # nonzero is foreground


def test_connected_components_validation():
    with pytest.raises(ValueError, match=r"mask: expected a 2-D \[H, W\] array"):
        MS.connected_components(np.zeros((2, 3, 3)))


def test_mask_statistics_known_square_empty_and_full():
    masks = np.zeros((3, 8, 16), dtype=bool)
    masks[0, 2:4, 4:8] = True  # rows 2-3, cols 4-7: centre (3.0, 6.0) in pixel-centre units
    masks[2] = True
    st = MS.mask_statistics(masks)
    assert st["area"].tolist() == [8 / 128, 0.0, 1.0]
    assert st["centroid_row"][0] == pytest.approx(3.0 / 8) and st["centroid_col"][0] == pytest.approx(6.0 / 16)
    assert np.isnan(st["centroid_row"][1]) and np.isnan(st["centroid_col"][1])
    assert st["centroid_row"][2] == pytest.approx(0.5) and st["centroid_col"][2] == pytest.approx(0.5)
    assert st["n_components"].tolist() == [1, 0, 1]


def test_mask_statistics_two_blobs_and_validation():
    m = np.zeros((1, 4, 4), dtype=np.uint8)
    m[0, 0, 0] = m[0, 3, 3] = 1
    st = MS.mask_statistics(m)
    assert st["n_components"].tolist() == [2] and st["centroid_row"][0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"masks: expected a 3-D \[n, H, W\] array"):
        MS.mask_statistics(np.zeros((4, 4)))


def test_wasserstein_1d():
    a = rng(32).normal(size=500)
    assert MS.wasserstein_1d(a, a + 0.7) == pytest.approx(0.7)
    assert MS.wasserstein_1d([0.0, 1.0, np.nan], [0.0, 1.0]) == 0.0
    assert np.isnan(MS.wasserstein_1d([np.nan, np.nan], [1.0]))


# ---------------------------------------------------------------- categories, Dice, mIoU

def test_category_frequencies_and_distance():
    labels = np.array([[[0, 0], [1, 3]], [[0, 1], [1, 1]]])
    freq = MS.category_frequencies(labels, 5)
    assert freq.tolist() == [3 / 8, 4 / 8, 0.0, 1 / 8, 0.0]
    assert MS.frequency_distance(freq, freq) == 0.0
    assert MS.frequency_distance([1.0, 0.0], [0.0, 1.0]) == 1.0
    assert MS.frequency_distance([0.5, 0.5, 0.0], [0.5, 0.0, 0.5]) == pytest.approx(0.5)


@pytest.mark.parametrize("labels, n, match", [
    (np.array([[[0, 4]]]), 4, "expected labels in 0..3, found 0..4"),
    (np.array([[[0.0, 1.0]]]), 4, "expected integer class labels"),
    (np.array([[0, 1]]), 4, r"3-D \[n, H, W\]"),
    (np.array([[[0, 1]]]), 0, "n_classes must be an integer >= 1"),
])
def test_category_frequencies_validation(labels, n, match):
    with pytest.raises(ValueError, match=match):
        MS.category_frequencies(labels, n)


@pytest.mark.parametrize("p, q, match", [
    ([0.5, 0.5], [1.0], "1-D probability vectors of one length"),
    ([0.5, 0.4], [0.5, 0.5], "p: expected non-negative frequencies summing to 1"),
    ([0.5, 0.5], [1.5, -0.5], "q: expected non-negative"),
])
def test_frequency_distance_validation(p, q, match):
    with pytest.raises(ValueError, match=match):
        MS.frequency_distance(p, q)


def test_mask_agreement_uses_the_evaluations_metrics():
    """The reference U-Net's agreement with generated masks: mean Dice for SCR, and for Cityscapes an
    mIoU from one confusion matrix summed over all images (not a mean of per-image scores)."""
    from gan_seg_aug.evaluation.gan_quality import _agreement

    pred = np.array([[[0, 0], [0, 0]], [[1, 1], [1, 0]]])
    target = np.array([[[0, 0], [0, 0]], [[1, 1], [1, 1]]])
    # summed confusion: class 0 TP 4 FP 1 -> 4/5; class 1 TP 3 FN 1 -> 3/4; class 2 absent -> ignored.
    assert _agreement("cityscapes", pred, target, 3) == pytest.approx((4 / 5 + 3 / 4) / 2)
    # Dice per image: 1.0 (both empty) and 6/7
    assert _agreement("scr_lung", pred, target, 2) == pytest.approx((1.0 + 6 / 7) / 2)
