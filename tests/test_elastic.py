"""The fast B-spline elastic path against SimpleITK (thesis §2.7.8, ITK BSplineTransform semantics)."""
import numpy as np
import pytest
import SimpleITK as sitk

from gan_seg_aug.augment import elastic as E


def smooth_pair(h, w, channels=1, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    image = np.stack([np.sin(xx / rng.uniform(4, 9) + c) * np.cos(yy / rng.uniform(4, 9)) for c in range(channels)], -1)
    r = np.hypot(yy - h / 2, xx - w / 2)
    mask = np.minimum((r / (min(h, w) / 2) * n_classes).astype(np.uint8), n_classes - 1)  # rings 0..K-1
    return image.astype(np.float32), mask


@pytest.mark.parametrize("h, w, mesh, order", [(256, 256, 3, 3), (128, 256, 3, 3), (20, 30, 5, 3), (33, 40, 2, 2),
                                               (17, 9, 4, 1)])
def test_control_grid_matches_the_simpleitk_initializer(h, w, mesh, order):
    fixed = sitk.BSplineTransformInitializer(sitk.Image([w, h], sitk.sitkFloat32), [mesh, mesh], order)
    f = fixed.GetFixedParameters()
    (ox, sx, nx), (oy, sy, ny) = E.control_grid(w, mesh, order), E.control_grid(h, mesh, order)
    np.testing.assert_allclose([nx, ny, ox, oy, sx, sy], f[:6], rtol=0, atol=1e-9)


@pytest.mark.parametrize("order", E.SPLINE_ORDERS)
def test_basis_is_a_partition_of_unity(order):
    b = E.basis_matrix(50, 3, order)
    assert b.shape == (50, 3 + order)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    assert (b >= 0).all()


@pytest.mark.parametrize("h, w, mesh, order, std", [(256, 256, 3, 3, 10.0), (128, 256, 3, 3, 10.0),
                                                    (48, 40, 5, 3, 4.0), (33, 40, 2, 2, 5.0), (30, 20, 3, 1, 3.0)])
def test_displacement_field_matches_simpleitk(h, w, mesh, order, std):
    rng = np.random.default_rng(h + w + mesh + order)
    for _ in range(3):
        c = rng.normal(0, std, (2, mesh + order, mesh + order))
        ours, ref = E.displacement_field(c, h, w, order), E.sitk_displacement_field(c, h, w, order)
        assert np.abs(ref).max() > std / 10  # a real deformation, not a vacuous comparison
        assert np.abs(ours - ref).max() < 1e-3


def test_transform_pulls_from_the_input():
    """out(p) = in(p + d(p)): a constant +3 px x displacement moves content 3 px to the LEFT."""
    image, mask = smooth_pair(24, 32)
    c = np.zeros((2, 6, 6))
    c[0] = 3.0
    out_image, out_mask = E.warp(image, mask, c)
    np.testing.assert_allclose(out_image[:, :-3], image[:, 3:], atol=1e-5)
    np.testing.assert_array_equal(out_mask[:, :-3], mask[:, 3:])
    np.testing.assert_allclose(out_image[:, -3:], np.repeat(image[:, -1:], 3, axis=1), atol=1e-6)  # edge repeated


@pytest.mark.parametrize("h, w, channels, n_classes, std", [(256, 256, 1, 2, 10.0), (64, 48, 3, 8, 4.0)])
def test_warp_matches_simpleitk_resample(h, w, channels, n_classes, std):
    image, mask = smooth_pair(h, w, channels, n_classes)
    rng = np.random.default_rng(1)
    for _ in range(3):
        c = rng.normal(0, std, (2, 6, 6))
        fast_image, fast_mask = E.warp(image, mask, c)
        ref_image, ref_mask = E.warp_sitk(image, mask, c)
        assert fast_image.shape == image.shape and fast_mask.dtype == mask.dtype
        inner = (slice(4, -4), slice(4, -4))
        assert np.abs(fast_image - ref_image)[inner].mean() < 1e-4
        assert np.abs(fast_image - ref_image).max() < 1e-3  # borders too: both replicate the edge
        assert (fast_mask == ref_mask).mean() > 0.995
        assert (fast_mask != mask).mean() > 0.001  # the deformation did move the mask


def test_index_remap_is_folded_exactly():
    image, mask = smooth_pair(40, 36, 3, 4)
    c = np.random.default_rng(2).normal(0, 3, (2, 6, 6))
    rows = np.clip(np.arange(40) - 5, 0, 39)
    cols = np.clip(np.arange(36) + 2, 0, 35)[::-1]
    full_image, full_mask = E.warp(image, mask, c)
    part_image, part_mask = E.warp(image, mask, c, rows=rows, cols=cols)
    np.testing.assert_allclose(part_image, full_image[rows][:, cols], atol=1e-5)
    np.testing.assert_array_equal(part_mask, full_mask[rows][:, cols])


def test_bad_inputs_are_named():
    image, mask = smooth_pair(16, 16)
    with pytest.raises(ValueError, match="coefficients of shape"):
        E.warp(image, mask, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="spline order"):
        E.warp(image, mask, np.zeros((2, 8, 8)), order=4)
    with pytest.raises(ValueError, match="0..255"):
        E.warp(image, mask.astype(np.int32) + 300, np.zeros((2, 6, 6)))
    with pytest.raises(ValueError, match="differ in size"):
        E.warp(image[:8], mask, np.zeros((2, 6, 6)))


@pytest.mark.realdata
def test_real_lung_mask_fast_path_matches_simpleitk(shared_data):
    from PIL import Image

    folder = shared_data / "jsrt_scr_sample"
    case = sorted((folder / "masks" / "left_lung").glob("*.gif"))[0].stem
    mask = (np.asarray(Image.open(folder / "masks" / "left_lung" / f"{case}.gif").convert("L").resize(
        (256, 256), Image.NEAREST)) > 127).astype(np.uint8)
    image = np.asarray(Image.open(folder / "images" / f"{case}.IMG.png").convert("L").resize(
        (256, 256), Image.BILINEAR), np.float32)[..., None] / 127.5 - 1
    c = np.random.default_rng(3).normal(0, 10, (2, 6, 6))
    fast_image, fast_mask = E.warp(image, mask, c)
    ref_image, ref_mask = E.warp_sitk(image, mask, c)
    assert (fast_mask == ref_mask).mean() > 0.995 and set(np.unique(fast_mask)) == {0, 1}
    assert np.abs(fast_image - ref_image).mean() < 1e-4
