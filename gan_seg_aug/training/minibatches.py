"""Training minibatches that mix real and GAN-generated pairs (paper §III, Tables II / IV).

Paper §III: "we take the fully-trained generator network, and use it directly as an input to a
U-Net based segmentation network [...] this on-the-fly generation allows for a much larger range of
images to be sampled from the generator"; "For training the segmentation network, we use different
ratios of real and generated data" (Table II: 16-0, 8-8, 0-16 pairs per minibatch; Table IV: 8-0,
4-4, 0-8), "and apply either no additional standard data augmentation, or a combination of standard
data augmentation methods".  Thesis §5.1.2: generated masks are thresholded at 0 (Fig. 5.2);
§5.2.2: Cityscapes masks are quantised to the categories (Fig. 5.8) -- :func:`encoding.decode_mask`.

Every minibatch holds exactly ``n_real`` real pairs first, then ``n_generated`` generated pairs.
Real pairs come in shuffled epochs (a fresh stateless permutation per epoch).  Standard
augmentation, when on, applies to real and generated pairs alike, per pair, in a parallel map.
Everything random is stateless and derived from ``seed`` and the element's index, and
``options.deterministic`` keeps the order, so the same seed gives the same batches.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_seg_aug.augment.ops import augment
from gan_seg_aug.augment.settings import AugParams
from gan_seg_aug.data.mask_encoding import decode_mask

AUTOTUNE = tf.data.AUTOTUNE


class GeneratorSampler:
    """Draws image+mask pairs from a trained pair generator, outside any tf.data graph.

    ``generator(z, training=False)`` maps ``z [n, latent_dim] ~ N(0, 1)`` (thesis Table 4.1) to
    ``[n, H, W, C + 1]`` in [-1, 1]; the last channel is the mask, decoded to labels with
    :func:`~gan_seg_aug.data.mask_encoding.decode_mask`.  The generator runs as a ``tf.function`` in the
    caller's eager context, so on the accelerator when there is one.  ``training=False`` uses the
    batch-norm moving statistics, like the GAN's own sample grids.

    ``stream(seed)`` (and calling the sampler, = ``stream(None)``) returns a fresh infinite iterator
    of ``chunk``-sized ``(images float32 [chunk, H, W, C], labels uint8 [chunk, H, W])``, the same
    for the same seeds (what ``tf.data.Dataset.from_generator`` needs for repeatable datasets).
    :func:`make_train_dataset` passes its own seed, so a resumed U-Net run, whose dataset is seeded
    by its iteration, draws new pairs instead of replaying the first ones.
    """

    def __init__(self, generator, latent_dim: int, n_classes: int, seed: int = 0, *, chunk: int = 32,
                 training: bool = False):
        for name, value, low in (("latent_dim", latent_dim, 1), ("n_classes", n_classes, 2), ("chunk", chunk, 1)):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"GeneratorSampler {name}={value!r}: expected a whole number >= {low}")
        self.latent_dim, self.n_classes, self.seed, self.chunk = int(latent_dim), int(n_classes), int(seed), int(chunk)
        self._generate = tf.function(lambda z: generator(z, training=training))
        probe = np.asarray(generator(np.zeros((1, self.latent_dim), np.float32), training=training))
        if probe.ndim != 4 or probe.shape[-1] < 2:
            raise ValueError(f"generator output of shape {probe.shape}: expected [n, H, W, image_channels + 1] "
                             f"(the last channel is the mask)")
        h, w, c = probe.shape[1], probe.shape[2], probe.shape[3] - 1
        self.image_shape = (int(h), int(w), int(c))

    @property
    def output_signature(self):
        h, w, c = self.image_shape
        return (tf.TensorSpec([self.chunk, h, w, c], tf.float32), tf.TensorSpec([self.chunk, h, w], tf.uint8))

    def _decode(self, z: np.ndarray):
        out = np.asarray(self._generate(tf.constant(z)), dtype=np.float32)
        c = self.image_shape[2]
        return np.ascontiguousarray(out[..., :c]), decode_mask(out[..., c], self.n_classes)

    def sample(self, n: int, seed: int | None = None):
        """``n`` pairs as NumPy arrays ``(images [n, H, W, C], labels uint8 [n, H, W])``."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        parts = [self._decode(rng.standard_normal((min(self.chunk, n - i), self.latent_dim), dtype=np.float32))
                 for i in range(0, n, self.chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __call__(self):
        return self.stream(None)

    def stream(self, seed=None):
        rng = np.random.default_rng(self.seed if seed is None else [self.seed, int(seed)])
        while True:
            yield self._decode(rng.standard_normal((self.chunk, self.latent_dim), dtype=np.float32))


def _check_mix(n_real, n_generated, sampler) -> tuple[int, int]:
    mix = f"{n_real}-{n_generated}"
    for v in (n_real, n_generated):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"invalid --mix {mix}: real and generated pairs per minibatch must be whole numbers >= 0")
    if n_real + n_generated == 0:
        raise ValueError(f"invalid --mix {mix}: the minibatch would be empty (R + G must be > 0)")
    if n_generated > 0 and sampler is None:
        raise ValueError(f"--mix {mix} asks for {n_generated} generated pairs per minibatch but no sampler was "
                         f"given: pass sampler=GeneratorSampler(<the fold's trained generator>, ...)")
    return int(n_real), int(n_generated)


def _check_real(images, labels, n_classes: int, n_real: int):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or labels.ndim != 3 or images.shape[:3] != labels.shape:
        raise ValueError(f"real training pairs: images {images.shape} and labels {labels.shape}; expected "
                         f"images [N, H, W, C] and labels [N, H, W] with the same N, H, W")
    if len(images) == 0:
        raise ValueError(f"--mix asks for {n_real} real pairs per minibatch but the training set is empty")
    if not np.issubdtype(images.dtype, np.floating) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"real training pairs: images must be float (got {images.dtype}), labels integer "
                         f"(got {labels.dtype})")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"real training labels span {labels.min()}..{labels.max()}, outside 0..{n_classes - 1} "
                         f"(n_classes={n_classes})")
    return images.astype(np.float32, copy=False), labels


def _element_seed(key, index):
    return tf.random.experimental.stateless_fold_in(key, tf.cast(index, tf.int64))


def _pairs(aug, key, num_parallel_calls):
    def fn(k, image, mask):
        s = augment({"image": image, "mask": mask}, aug, _element_seed(key, k))
        return s["image"], s["mask"]

    return lambda ds: ds.enumerate().map(lambda k, pair: fn(k, *pair), num_parallel_calls=num_parallel_calls)


def _real_stream(images, labels, perm_key):
    n = len(images)
    images_t, labels_t = tf.constant(images), tf.constant(labels)

    def epoch(e):
        order = tf.argsort(tf.random.stateless_uniform([n], _element_seed(perm_key, e)), stable=True)
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.counter().flat_map(epoch)
    return indices.map(lambda i: (tf.gather(images_t, i), tf.gather(labels_t, i)))


def make_train_dataset(images, labels, *, n_real: int, n_generated: int, sampler: GeneratorSampler | None = None,
                       n_classes: int, aug: AugParams | None = None, seed: int = 0,
                       num_parallel_calls=AUTOTUNE) -> tf.data.Dataset:
    """Infinite dataset of ``(images [B, H, W, C] float32, labels [B, H, W] int32)`` minibatches,
    ``B = n_real + n_generated``: rows ``[:n_real]`` real, rows ``[n_real:]`` generated.

    ``images`` / ``labels``: the fold's real training pairs (unused, may be None, for 0-G mixes);
    ``sampler``: a :class:`GeneratorSampler` (needed when ``n_generated > 0``); ``aug``: standard
    augmentation at the training resolution, applied to every pair (None = none).
    """
    n_real, n_generated = _check_mix(n_real, n_generated, sampler)
    if aug is not None and not isinstance(aug, AugParams):
        raise ValueError(f"aug={aug!r}: expected an AugParams or None")
    keys = tf.random.experimental.stateless_split(tf.constant([int(seed), 0], tf.int64), 3)
    streams, shapes = [], {}
    if n_real:
        images, labels = _check_real(images, labels, n_classes, n_real)
        shapes["real pairs"] = images.shape[1:]
        stream = _real_stream(images, labels, keys[0]).apply(_pairs(aug, keys[1], num_parallel_calls))
        streams.append(stream.batch(n_real, drop_remainder=True))
    if n_generated:
        if getattr(sampler, "n_classes", n_classes) != n_classes:
            raise ValueError(f"the sampler decodes {sampler.n_classes} classes but the task has {n_classes}")
        shapes["generated pairs"] = tuple(sampler.image_shape)
        stream = tf.data.Dataset.from_generator(sampler.stream, args=(np.int64(seed) & (2 ** 63 - 1),),
                                                output_signature=sampler.output_signature).unbatch()
        stream = stream.apply(_pairs(aug, keys[2], num_parallel_calls))
        streams.append(stream.batch(n_generated, drop_remainder=True))
    if len(set(map(tuple, shapes.values()))) > 1:
        raise ValueError(f"real and generated pairs differ in size ({shapes}): the GAN must generate pairs at the "
                         f"U-Net's training resolution")

    if len(streams) == 1:
        ds = streams[0]
    else:
        ds = tf.data.Dataset.zip(tuple(streams)).map(
            lambda r, g: (tf.concat([r[0], g[0]], 0), tf.concat([tf.cast(r[1], tf.int32), tf.cast(g[1], tf.int32)], 0)))
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)))
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(AUTOTUNE)
