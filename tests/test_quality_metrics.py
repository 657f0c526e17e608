"""gan_seg_aug.evaluation.quality_metrics on constructed cases whose answers are known."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gan_seg_aug.evaluation import quality_metrics as Q


def rng(seed=0):
    return np.random.default_rng(seed)


def test_module_does_not_import_tensorflow():
    code = "import sys, gan_seg_aug.evaluation.quality_metrics; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- Fréchet distance

def test_fd_identical_sets_is_zero():
    a = rng().normal(size=(200, 4))
    assert Q.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fd_exact_shift_is_squared_shift():
    a = rng().normal(size=(300, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert Q.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_fd_independent_gaussians_with_shifted_mean():
    a, b = rng(1).normal(size=(20000, 3)), rng(2).normal(size=(20000, 3)) + [2.0, 0.0, 0.0]
    assert Q.frechet_distance(a, b) == pytest.approx(4.0, abs=0.05)


def test_fd_scaled_copy_matches_closed_form():
    # b = 2a: C_b = 4 C_a, so tr(C_a + 4 C_a - 2 (4 C_a^2)^(1/2)) = tr(C_a), plus |mu_a - 2 mu_a|^2
    a = rng(3).normal(size=(400, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 2.0, 0.1], [0.0, 0.0, 0.5]]) + 1.0
    expected = float(a.mean(0) @ a.mean(0) + np.trace(np.cov(a, rowvar=False)))
    assert Q.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)
    assert Q.frechet_distance(2 * a, a) == pytest.approx(expected, rel=1e-6)


def test_fd_singular_covariance_is_finite_and_silent():
    a, b = rng(4).normal(size=(5, 10)), rng(5).normal(size=(6, 10))  # fewer samples than dims
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same, other = Q.frechet_distance(a, a), Q.frechet_distance(a, b)
    assert same == pytest.approx(0.0, abs=1e-4)
    assert np.isfinite(other) and other > 1.0


def test_fd_one_dimensional_features():
    a = np.array([[0.0], [2.0], [4.0]])
    assert Q.frechet_distance(a, a + 10.0) == pytest.approx(100.0)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros((5, 3)), np.zeros((5, 4)), "feature dims differ"),
    (np.zeros(5), np.zeros((5, 1)), "2-D"),
    (np.zeros((1, 3)), np.zeros((5, 3)), "at least 2 samples"),
    (np.full((5, 3), np.nan), np.zeros((5, 3)), "finite"),
])
def test_fd_validation(a, b, match):
    with pytest.raises(ValueError, match=match):
        Q.frechet_distance(a, b)


# ---------------------------------------------------------------- KID

@pytest.mark.parametrize("shape_b, kw", [((20, 5), {}), ((15, 5), {}),
                                         ((20, 5), {"degree": 2, "gamma": 0.7, "coef": 0.3})])
def test_kid_matches_bruteforce(shape_b, kw):
    a, b = rng(6).normal(size=(20, 5)), rng(7).normal(size=shape_b) + 0.3
    mean, std = Q.kid(a, b, **kw)
    assert mean == pytest.approx(Q.kid_bruteforce(a, b, **kw), abs=1e-6)
    assert std == 0.0


def test_kid_same_distribution_near_zero_shifted_positive():
    a, b = rng(8).normal(size=(500, 5)), rng(9).normal(size=(500, 5))
    same = Q.kid(a, b)[0]
    shifted = Q.kid(a, b + 0.5)[0]
    assert abs(same) < 0.02
    assert shifted > 0.5 and shifted > 20 * abs(same)


def test_kid_is_unbiased_so_identical_small_sets_can_be_negative():
    a = rng(10).normal(size=(10, 3))
    assert Q.kid(a, a)[0] < 0.0


def test_kid_subsets_deterministic_and_close_to_full():
    a, b = rng(11).normal(size=(300, 4)), rng(12).normal(size=(300, 4)) + 0.4
    full = Q.kid(a, b)[0]
    m1, s1 = Q.kid(a, b, n_subsets=30, subset_size=100, seed=1)
    assert (m1, s1) == Q.kid(a, b, n_subsets=30, subset_size=100, seed=1)
    assert Q.kid(a, b, n_subsets=30, subset_size=100, seed=2) != (m1, s1)
    assert s1 > 0.0
    assert m1 == pytest.approx(full, abs=3 * s1 / np.sqrt(30) + 1e-3)


def test_kid_subset_defaults():
    a, b = rng(13).normal(size=(40, 3)), rng(14).normal(size=(30, 3))
    # subset_size defaults to min(1000, 40, 30) = 30: every subset of b is all of b
    mean, std = Q.kid(a, b, n_subsets=5)
    assert std > 0.0 and np.isfinite(mean)
    assert Q.kid(a[:30], b, subset_size=30, n_subsets=3)[0] == pytest.approx(Q.kid(a[:30], b)[0])


@pytest.mark.parametrize("kw, match", [
    ({"subset_size": 50}, "at most the smaller sample count 20"),
    ({"subset_size": 1}, "subset_size must be an integer >= 2"),
    ({"n_subsets": 0}, "n_subsets must be an integer >= 1"),
    ({"degree": 0}, "degree must be an integer >= 1"),
    ({"gamma": -1.0}, "gamma must be > 0"),
])
def test_kid_validation(kw, match):
    a = rng().normal(size=(20, 3))
    with pytest.raises(ValueError, match=match):
        Q.kid(a, a, **kw)


def test_kid_and_bruteforce_reject_mismatched_dims():
    for f in (Q.kid, Q.kid_bruteforce):
        with pytest.raises(ValueError, match="feature dims differ"):
            f(np.zeros((4, 2)), np.zeros((4, 3)))


# ---------------------------------------------------------------- precision / recall

def test_pr_identical_sets():
    real = rng(15).normal(size=(100, 4))
    assert Q.precision_recall(real, real.copy(), k=3) == (1.0, 1.0)


def test_pr_far_away_fake():
    real = rng(16).normal(size=(100, 4))
    assert Q.precision_recall(real, rng(17).normal(size=(80, 4)) + 100.0) == (0.0, 0.0)


def test_pr_collapsed_fake_has_full_precision_low_recall():
    real = rng(18).normal(size=(100, 4))
    fake = np.repeat(real[:1], 50, axis=0)
    precision, recall = Q.precision_recall(real, fake, k=3)
    assert precision == 1.0
    assert recall == pytest.approx(1 / 100)  # only real[0] itself lies in the zero-radius fake balls


def test_pr_same_distribution_is_high_and_hand_case():
    real, fake = rng(19).normal(size=(400, 2)), rng(20).normal(size=(400, 2))
    p, r = Q.precision_recall(real, fake, k=5)
    assert p > 0.8 and r > 0.8
    # 1-D, k=2: real radii 2, 1, 1, 2 around 0, 1, 2, 3; fakes 0.5 (inside) and 5.5, 6, 7 (outside)
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [5.5], [6.0], [7.0]])
    assert Q.precision_recall(real, fake, k=2)[0] == 0.25


def test_pr_chunked_equals_unchunked(monkeypatch):
    real, fake = rng(21).normal(size=(60, 3)), rng(22).normal(size=(50, 3)) + 0.5
    whole = Q.precision_recall(real, fake, k=3)
    monkeypatch.setattr(Q, "_BLOCK", 7 * 60)  # a few rows per cdist call
    assert Q.precision_recall(real, fake, k=3) == whole


@pytest.mark.parametrize("real, fake, k, match", [
    (np.zeros((3, 2)), np.zeros((10, 2)), 3, "real: expected at least 4 samples"),
    (np.zeros((10, 2)), np.zeros((3, 2)), 3, "fake: expected at least 4 samples"),
    (np.zeros((10, 2)), np.zeros((10, 3)), 3, "feature dims differ"),
    (np.zeros((10, 2)), np.zeros((10, 2)), 0, "k must be an integer >= 1"),
])
def test_pr_validation(real, fake, k, match):
    with pytest.raises(ValueError, match=match):
        Q.precision_recall(real, fake, k=k)


# ---------------------------------------------------------------- nearest neighbours, memorisation

def test_nearest_distances_match_cdist_on_flattened_images():
    query = rng(23).random((7, 4, 5, 2)).astype(np.float32)
    ref = rng(24).random((11, 4, 5, 2)).astype(np.float32)
    d, i = Q.nearest_distances(query, ref)
    full = cdist(query.reshape(7, -1).astype(np.float64), ref.reshape(11, -1).astype(np.float64))
    assert i.dtype == np.int64 and i.tolist() == full.argmin(1).tolist()
    np.testing.assert_allclose(d, full.min(1), rtol=1e-12)


def test_nearest_distances_exact_copies_are_zero_and_exclude_self():
    ref = rng(25).normal(size=(20, 30))
    d, i = Q.nearest_distances(ref[[3, 7]], ref)
    assert d.tolist() == [0.0, 0.0] and i.tolist() == [3, 7]
    d, i = Q.nearest_distances(ref, ref, exclude_self=True)
    full = cdist(ref, ref)
    np.fill_diagonal(full, np.inf)
    assert (i != np.arange(20)).all() and i.tolist() == full.argmin(1).tolist()
    np.testing.assert_allclose(d, full.min(1), rtol=1e-12)


def test_nearest_distances_chunked_equals_unchunked(monkeypatch):
    query, ref = rng(26).normal(size=(23, 8)), rng(27).normal(size=(17, 8))
    d0, i0 = Q.nearest_distances(query, ref)
    e0, j0 = Q.nearest_distances(ref, ref, exclude_self=True)
    monkeypatch.setattr(Q, "_BLOCK", 8 * 3)  # 3 rows per chunk on both sides
    d1, i1 = Q.nearest_distances(query, ref)
    e1, j1 = Q.nearest_distances(ref, ref, exclude_self=True)
    assert i1.tolist() == i0.tolist() and j1.tolist() == j0.tolist()
    np.testing.assert_allclose(d1, d0, rtol=1e-12)
    np.testing.assert_allclose(e1, e0, rtol=1e-12)


@pytest.mark.parametrize("query, ref, kw, match", [
    (np.zeros((3, 4)), np.zeros((5, 5)), {}, "query rows have 4 values, reference rows 5"),
    (np.zeros((3, 4)), np.zeros((5, 4)), {"exclude_self": True}, "exclude_self expects query to be reference"),
    (np.zeros((3, 4)), np.zeros((0, 4)), {}, "reference: expected at least 1 samples"),
    (np.full((3, 4), np.inf), np.zeros((5, 4)), {}, "query: expected finite values"),
    (np.float64(1.0), np.zeros((5, 1)), {}, "query: expected rows"),
])
def test_nearest_distances_validation(query, ref, kw, match):
    with pytest.raises(ValueError, match=match):
        Q.nearest_distances(query, ref, **kw)


def test_memorisation_copies_vs_held_out():
    train, val, fresh = rng(28).random((200, 16)), rng(29).random((200, 16)), rng(30).random((200, 16))
    v_d, _ = Q.nearest_distances(val, train)
    copies = Q.memorisation(Q.nearest_distances(train[rng(31).integers(0, 200, 100)], train)[0], v_d)
    assert copies["fraction_below"] == 1.0 and copies["gen_median"] == 0.0
    held_out = Q.memorisation(Q.nearest_distances(fresh, train)[0], v_d)
    assert held_out["fraction_below"] < 0.15
    assert held_out["threshold"] == pytest.approx(np.percentile(v_d, 5.0))
    assert held_out["val_median"] == pytest.approx(np.median(v_d))


def test_memorisation_hand_case_and_percentile():
    m = Q.memorisation([1.0, 2.0, 3.0, 9.0], [0.0, 10.0], percentile=50)
    assert m == {"threshold": 5.0, "fraction_below": 0.75, "gen_median": 2.5, "val_median": 5.0}


@pytest.mark.parametrize("gen, val, pct, match", [
    ([1.0], [1.0], 101.0, "percentile must be in"),
    ([], [1.0], 5.0, "gen_to_train_dist: expected at least 1 samples"),
    ([1.0], [np.nan], 5.0, "val_to_train_dist: expected finite"),
])
def test_memorisation_validation(gen, val, pct, match):
    with pytest.raises(ValueError, match=match):
        Q.memorisation(gen, val, percentile=pct)
