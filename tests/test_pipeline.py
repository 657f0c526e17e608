"""Mixed real + generated minibatches (paper §III, Tables II / IV; thesis Figs. 5.2 / 5.8)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from gan_seg_aug.augment.settings import AUG_PRESETS
from gan_seg_aug.data.mask_encoding import encode_mask
from gan_seg_aug.training.minibatches import GeneratorSampler, make_train_dataset

H, W = 32, 32
GEN_VALUE = 0.75  # every generated image is this constant: recognisable in a batch


def real_set(n=6, h=H, w=W, channels=1):
    """Case i: a constant image -0.9 + 0.1 i (identifies the case) and a centred square of lung."""
    images = np.stack([np.full((h, w, channels), -0.9 + 0.1 * i, np.float32) for i in range(n)])
    labels = np.zeros((n, h, w), np.uint8)
    labels[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1
    return images, labels


def case_of(image):
    return int(round((float(image.mean()) + 0.9) / 0.1))


def constant_generator(h=H, w=W, channels=1, mask_level=0.4):
    """A stand-in pair generator: a constant image and a constant mask channel (TF ops, like Keras)."""
    def generate(z, training=False):
        n = tf.shape(z)[0]
        return tf.concat([tf.fill([n, h, w, channels], GEN_VALUE), tf.fill([n, h, w, 1], mask_level)], -1)
    return generate


def take(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in itertools.islice(ds, n)]


@pytest.mark.parametrize("n_real, n_generated", [(3, 2), (4, 0), (0, 3), (1, 1)])
def test_batches_hold_exactly_r_real_then_g_generated(n_real, n_generated):
    images, labels = real_set()
    sampler = GeneratorSampler(constant_generator(), 8, 2, seed=0, chunk=4)
    ds = make_train_dataset(images, labels, n_real=n_real, n_generated=n_generated, sampler=sampler, n_classes=2)
    b = n_real + n_generated
    assert ds.element_spec[0].shape.as_list() == [b, H, W, 1] and ds.element_spec[0].dtype == tf.float32
    assert ds.element_spec[1].shape.as_list() == [b, H, W] and ds.element_spec[1].dtype == tf.int32
    for x, y in take(ds, 4):
        is_generated = np.isclose(x.reshape(b, -1), GEN_VALUE).all(axis=1)
        assert is_generated.tolist() == [False] * n_real + [True] * n_generated
        assert (y[n_real:] == 1).all()  # mask level 0.4 > 0 -> lung everywhere (threshold at 0, Fig. 5.2)
        np.testing.assert_array_equal(y[:n_real], labels[:n_real])


def test_real_pairs_come_in_shuffled_epochs():
    images, labels = real_set(n=6)
    ds = make_train_dataset(images, labels, n_real=3, n_generated=0, n_classes=2, seed=5)
    cases = [case_of(img) for x, _ in take(ds, 8) for img in x]  # 24 pairs = 4 epochs of 6 cases
    epochs = [cases[i:i + 6] for i in range(0, 24, 6)]
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled each epoch


def test_same_seed_same_batches_other_seed_other_batches():
    images, labels = real_set(n=5, h=48, w=48)
    images = images + np.random.default_rng(0).normal(0, 0.05, images.shape).astype(np.float32)
    gen = constant_generator(48, 48)
    aug = AUG_PRESETS["scr_lung"].scaled(0.25)

    def batches(seed):
        sampler = GeneratorSampler(gen, 8, 2, seed=seed, chunk=3)
        return take(make_train_dataset(images, labels, n_real=2, n_generated=2, sampler=sampler, n_classes=2,
                                       aug=aug, seed=seed), 3)

    a, b, c = batches(1), batches(1), batches(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_augmentation_applies_to_real_and_generated_pairs_alike():
    """Cityscapes preset (flip only): a left-right asymmetric generated mask must appear flipped
    in some generated slots, and the real masks too."""
    images, labels = real_set(n=4, channels=3)
    labels[:, :, :4] = 2  # left stripe: asymmetric
    levels = np.zeros((H, W), np.int64)
    levels[:, :4] = 5  # generated: category 5 on the left stripe

    def generate(z, training=False):
        n = tf.shape(z)[0]
        mask = tf.constant(encode_mask(levels, 8)[None, :, :, None])
        return tf.concat([tf.fill([n, H, W, 3], GEN_VALUE), tf.tile(mask, [n, 1, 1, 1])], -1)

    sampler = GeneratorSampler(generate, 8, 8, seed=0, chunk=4)
    ds = make_train_dataset(images, labels, n_real=2, n_generated=2, sampler=sampler, n_classes=8,
                            aug=AUG_PRESETS["cityscapes"], seed=3)
    real_flips, gen_flips = set(), set()
    for _, y in take(ds, 6):
        real_flips |= {bool((m[:, -4:] == 2).all()) for m in y[:2]}
        gen_flips |= {bool((m[:, -4:] == 5).all()) for m in y[2:]}
        for m in y[2:]:
            assert set(np.unique(m)) == {0, 5}
    assert real_flips == {True, False} and gen_flips == {True, False}


def test_category_encoding_round_trips_through_quantisation():
    """Thesis Fig. 5.8: generated Cityscapes masks are quantised to the nearest of 8 levels; any
    output within half a level spacing of the true level decodes back to that category."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 8, (4, H, W))
    noisy = encode_mask(truth, 8) + rng.uniform(-0.99, 0.99, truth.shape).astype(np.float32) / 7  # < 1/7
    table = tf.constant(np.concatenate([np.zeros((4, H, W, 3), np.float32), noisy[..., None]], -1))

    def generate(z, training=False):
        return tf.gather(table, tf.range(tf.shape(z)[0]) % 4)  # the same 4 pairs in every chunk

    sampler = GeneratorSampler(generate, 8, 8, seed=0, chunk=4)
    images, labels = sampler.sample(4)
    np.testing.assert_array_equal(labels, truth)
    assert labels.dtype == np.uint8 and images.shape == (4, H, W, 3)
    _, y = take(make_train_dataset(None, None, n_real=0, n_generated=4, sampler=sampler, n_classes=8), 1)[0]
    np.testing.assert_array_equal(y, truth)


def test_scr_masks_are_thresholded_at_zero():
    sampler_pos = GeneratorSampler(constant_generator(mask_level=0.01), 8, 2, chunk=2)
    sampler_neg = GeneratorSampler(constant_generator(mask_level=-0.01), 8, 2, chunk=2)
    assert (sampler_pos.sample(3)[1] == 1).all() and (sampler_neg.sample(3)[1] == 0).all()


def test_sampler_restarts_from_its_seed_and_sample_handles_partial_chunks():
    def generate(z, training=False):
        n = tf.shape(z)[0]
        return tf.concat([tf.tile(z[:, None, None, :1], [1, H, W, 1]) * 0.1, tf.zeros([n, H, W, 1])], -1)

    sampler = GeneratorSampler(generate, 8, 2, seed=4, chunk=3)
    first = next(sampler())[0]
    np.testing.assert_array_equal(first, next(sampler())[0])
    images, labels = sampler.sample(7)
    assert images.shape == (7, H, W, 1) and labels.shape == (7, H, W)
    np.testing.assert_array_equal(images[:3], first)
    assert sampler.image_shape == (H, W, 1)


def test_generated_rows_follow_the_dataset_seed_so_a_resumed_run_draws_new_pairs():
    def generate(z, training=False):
        n = tf.shape(z)[0]
        return tf.concat([tf.tile(z[:, None, None, :1], [1, H, W, 1]) * 0.1, tf.zeros([n, H, W, 1])], -1)

    sampler = GeneratorSampler(generate, 8, 2, seed=4, chunk=3)

    def first_batch(seed):
        ds = make_train_dataset(None, None, n_real=0, n_generated=4, sampler=sampler, n_classes=2, seed=seed)
        return next(iter(ds))[0].numpy()

    a = first_batch(0)
    np.testing.assert_array_equal(first_batch(0), a)  # repeatable for one seed
    assert not np.allclose(first_batch(1_000_003 * 50), a)  # train_unet seeds a resume at iteration 50 so


def test_sampler_with_a_keras_generator():
    from gan_seg_aug.nets.networks import build_generator

    gen = build_generator("scr_lung", height=32, width=32, width_div=32)
    sampler = GeneratorSampler(gen, 128, 2, seed=0, chunk=4)
    images, labels = sampler.sample(5)
    assert images.shape == (5, 32, 32, 1) and images.dtype == np.float32
    assert np.abs(images).max() <= 1 and set(np.unique(labels)) <= {0, 1}
    x, y = take(make_train_dataset(*real_set(n=3), n_real=2, n_generated=2, sampler=sampler, n_classes=2,
                                   aug=AUG_PRESETS["scr_lung"].scaled(0.125)), 1)[0]
    assert x.shape == (4, 32, 32, 1) and y.shape == (4, 32, 32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_real=0, n_generated=0), "--mix 0-0"),
    (dict(n_real=-1, n_generated=4), "--mix -1-4"),
    (dict(n_real=8, n_generated=8), "--mix 8-8 asks for 8 generated pairs"),
])
def test_invalid_mix_names_the_flag(kwargs, message):
    images, labels = real_set()
    with pytest.raises(ValueError, match=message):
        make_train_dataset(images, labels, n_classes=2, **kwargs)


def test_mismatched_inputs_are_rejected():
    images, labels = real_set()
    sampler = GeneratorSampler(constant_generator(16, 16), 8, 2)
    with pytest.raises(ValueError, match="differ in size"):
        make_train_dataset(images, labels, n_real=2, n_generated=2, sampler=sampler, n_classes=2)
    with pytest.raises(ValueError, match="outside 0..1"):
        make_train_dataset(images, labels + 1, n_real=2, n_generated=0, n_classes=2)
    with pytest.raises(ValueError, match=r"labels \[N, H, W\]"):
        make_train_dataset(images, labels[:, 0], n_real=2, n_generated=0, n_classes=2)
    with pytest.raises(ValueError, match="AugParams"):
        make_train_dataset(images, labels, n_real=2, n_generated=0, n_classes=2, aug={"flip": True})
    with pytest.raises(ValueError, match="image_channels \\+ 1"):
        GeneratorSampler(lambda z, training=False: tf.zeros([1, 8, 8, 1]), 8, 2)
    with pytest.raises(ValueError, match="latent_dim"):
        GeneratorSampler(constant_generator(), 0, 2)
