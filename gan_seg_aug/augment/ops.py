"""Standard data augmentation of image+mask pairs (thesis §2.7; paper §V-A Table I, §V-B Table III).

Paper §III: "a combination of standard data augmentation methods composed of *intensity shifts*,
*intensity scaling*, *random translations*, *horizontal flipping* and *elastic deformations*".
Every parameter is the standard deviation of a Gaussian (Table I: "Intensity shift around zero
(stddev)", "Intensity scaling around one (stddev)", "Random translation around zero (stddev)",
"Elastic deformation around zero (stddev)"); flipping happens at "a rate of 50%" (§2.7.4).  The
pixel values are for the paper's 256 px side (§2.7: "a spatial extent of [256 x 256]").

A sample is a dict ``{"image": float32 [H, W, C] in [-1, 1], "mask": int [H, W]}``; other keys pass
through.  Each op is a small function with its own parameters and an explicit stateless seed
(shape ``[2]`` integers, or a Python int), so it gives the same result eagerly and inside
``tf.data.Dataset.map`` and the same seed always gives the same draw.  Geometric ops move image and
mask together (one draw); intensity ops touch the image only, so the label set of a mask is never
changed by interpolation: the mask is only ever copied, gathered or nearest-neighbour resampled.

Choices where the thesis is silent (docs/decisions.md §6): borders replicate the edge pixel
(§2.7.5 "nearest neighbor" mode) for image and mask; translations are rounded to whole pixels (an
exact shift, no second interpolation after the elastic one); intensity ops are applied shift then
scale and are not clipped.
"""
from __future__ import annotations


import numpy as np
import tensorflow as tf

from gan_seg_aug.augment import elastic as _elastic
from gan_seg_aug.augment.settings import AugParams

# Fixed seed slots, so that enabling one op never changes another op's draw.
_SLOT = {"elastic": 0, "translate": 1, "flip": 2, "shift": 3, "scale": 4}


def as_seed(seed) -> tf.Tensor:
    """A stateless-RNG seed: an int ``s`` becomes ``[s, 0]``; a shape-[2] tensor is kept."""
    s = tf.convert_to_tensor(seed)
    if not s.dtype.is_integer:
        raise ValueError(f"augmentation seed {seed!r}: expected an int or a shape-[2] integer tensor")
    s = tf.cast(s, tf.int64)
    if s.shape.rank == 0:
        return tf.stack([s, tf.constant(0, tf.int64)])
    if s.shape.as_list() != [2]:
        raise ValueError(f"augmentation seed of shape {s.shape}: expected a scalar or shape [2]")
    return s


def _with(sample, **changes):
    out = dict(sample)
    out.update(changes)
    return out


def _image(sample):
    return tf.cast(sample["image"], tf.float32)


# --- intensity (image only) ------------------------------------------------------------------------

def intensity_shift(sample, std: float, seed):
    """§2.7.3: add one N(0, std) scalar to the whole image (brightness)."""
    offset = tf.random.stateless_normal([], as_seed(seed), stddev=float(std))
    return _with(sample, image=_image(sample) + offset)


def intensity_scale(sample, std: float, seed):
    """§2.7.2: multiply the whole image by one N(1, std) scalar (contrast about 0, mid-grey)."""
    factor = tf.random.stateless_normal([], as_seed(seed), mean=1.0, stddev=float(std))
    return _with(sample, image=_image(sample) * factor)


# --- geometric (image and mask together) ------------------------------------------------------------

def draw_translation(std: float, seed) -> tf.Tensor:
    """The whole-pixel shift ``[dy, dx]`` (int32) that :func:`translate` applies for this seed."""
    t = tf.random.stateless_normal([2], as_seed(seed), stddev=float(std))
    return tf.cast(tf.round(t), tf.int32)


def _shifted_indices(n, shift):
    """Source index of each output pixel for a whole-pixel shift, edges repeated."""
    return tf.clip_by_value(tf.range(n) - tf.cast(shift, tf.int32), 0, n - 1)


def _shift_axis(x, shift, axis: int):
    """Shift along axis 0 or 1 by whole pixels, repeating the edge (slices, not a gather: ~3x faster)."""
    n = tf.shape(x)[axis]
    s = tf.clip_by_value(tf.cast(shift, tf.int32), -n, n)
    pos, neg = tf.maximum(s, 0), tf.maximum(-s, 0)

    def part(a, b):
        return x[a:b] if axis == 0 else x[:, a:b]

    return tf.concat([tf.repeat(part(0, 1), pos, axis=axis), part(neg, n - pos),
                      tf.repeat(part(n - 1, n), neg, axis=axis)], axis=axis)


def shift_pixels(sample, dy, dx):
    """Move content ``dy`` rows down and ``dx`` columns right; uncovered pixels repeat the edge."""
    image, mask = _image(sample), tf.convert_to_tensor(sample["mask"])

    def move(x):
        out = _shift_axis(_shift_axis(x, dy, 0), dx, 1)
        out.set_shape(x.shape)
        return out

    return _with(sample, image=move(image), mask=move(mask))


def translate(sample, std: float, seed):
    """§2.7.5: shift by N(0, std px) per axis, rounded to whole pixels, edge-replicating border."""
    t = draw_translation(std, seed)
    return shift_pixels(sample, t[0], t[1])


def draw_flip(seed, p: float = 0.5) -> tf.Tensor:
    """Whether :func:`hflip` flips for this seed (boolean scalar)."""
    return tf.random.stateless_uniform([], as_seed(seed)) < p


def hflip(sample, seed, p: float = 0.5):
    """§2.7.4: mirror left-right with probability ``p`` ("most commonly at a rate of 50%")."""
    do = draw_flip(seed, p)
    image, mask = _image(sample), tf.convert_to_tensor(sample["mask"])
    return _with(sample, image=tf.where(do, tf.reverse(image, [1]), image),
                 mask=tf.where(do, tf.reverse(mask, [1]), mask))


def draw_elastic(std: float, seed, mesh: int = 3, order: int = 3) -> tf.Tensor:
    """Control-point displacements ``[2, mesh+order, mesh+order]`` ~ N(0, std px) (SimpleITK
    parameter layout, x component first), as used by :func:`elastic` for this seed."""
    n = int(mesh) + int(order)
    return tf.random.stateless_normal([2, n, n], as_seed(seed), stddev=float(std), dtype=tf.float64)


def _warp(sample, coeffs, order, rows=None, cols=None, backend: str = "fast"):
    image, mask = _image(sample), tf.convert_to_tensor(sample["mask"])
    args = [image, mask, coeffs] + ([rows, cols] if rows is not None else [])

    def run(i, m, c, *rc):
        if backend == "fast":
            return _elastic.warp(i, m, c, order, *rc)
        wi, wm = _elastic.warp_sitk(i, m, c, order)  # the whole-pixel remap after the warp, as in warp()
        if rc:
            wi, wm = wi[rc[0]][:, rc[1]], wm[rc[0]][:, rc[1]]
        return wi.astype(np.float32), wm

    out_image, out_mask = tf.numpy_function(run, args, [tf.float32, mask.dtype], stateful=False)
    out_image.set_shape(image.shape)
    out_mask.set_shape(mask.shape)
    return _with(sample, image=out_image, mask=out_mask)


def elastic(sample, std: float, seed, mesh: int = 3, order: int = 3, backend: str = "fast"):
    """§2.7.8: B-spline elastic deformation, one field for image (linear) and mask (nearest).

    The coefficients are drawn in TensorFlow (stateless); the field is evaluated and applied by
    :func:`gan_seg_aug.augment.elastic.warp` (cv2, ``backend="fast"``) or by SimpleITK's
    ``Resample`` with the same ``BSplineTransform`` (``"simpleitk"``) through ``tf.numpy_function``."""
    _elastic.control_grid(8, mesh, order)  # validates mesh / order with a clear message
    return _warp(sample, draw_elastic(std, seed, mesh, order), order, backend=backend)


def augment(sample, params: AugParams | None, seed):
    """Apply ``params`` in a fixed order: elastic, translation, flip (geometric, on image and
    mask), then intensity shift, intensity scaling (image only).  Zero parameters are skipped.

    Each op draws from its own slot of ``seed`` (stateless split), so e.g. turning translation on
    leaves the elastic field of the same seed unchanged.
    """
    if params is None or params.is_identity:
        return _with(sample, image=_image(sample))
    seeds = tf.random.experimental.stateless_split(as_seed(seed), len(_SLOT))
    if params.elastic_std > 0:
        # Translation and flip are whole-pixel index remaps, so they fold exactly into the one
        # cv2.remap pass of the elastic op (same result as running translate / hflip after it).
        mask = tf.convert_to_tensor(sample["mask"])
        rows, cols = tf.range(tf.shape(mask)[0]), tf.range(tf.shape(mask)[1])
        if params.translate_std > 0:
            t = draw_translation(params.translate_std, seeds[_SLOT["translate"]])
            rows, cols = _shifted_indices(tf.shape(mask)[0], t[0]), _shifted_indices(tf.shape(mask)[1], t[1])
        if params.flip:
            cols = tf.where(draw_flip(seeds[_SLOT["flip"]]), tf.reverse(cols, [0]), cols)
        coeffs = draw_elastic(params.elastic_std, seeds[_SLOT["elastic"]], params.elastic_mesh, params.elastic_order)
        sample = _warp(sample, coeffs, params.elastic_order, rows, cols, backend=params.elastic_backend)
    else:
        if params.translate_std > 0:
            sample = translate(sample, params.translate_std, seeds[_SLOT["translate"]])
        if params.flip:
            sample = hflip(sample, seeds[_SLOT["flip"]])
    if params.shift_std > 0:
        sample = intensity_shift(sample, params.shift_std, seeds[_SLOT["shift"]])
    if params.scale_std > 0:
        sample = intensity_scale(sample, params.scale_std, seeds[_SLOT["scale"]])
    return _with(sample, image=_image(sample))
