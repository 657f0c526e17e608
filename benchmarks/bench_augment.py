"""Augmentation and input-pipeline throughput against the U-Net's consumption, in ONE run.

Measures, on ONE thread (cv2, SimpleITK and TensorFlow all pinned, so the figures are per core):

1. B-spline elastic deformation of a 256^2 image+mask pair, 3x3 mesh, cubic, N(0, 10 px):
   SimpleITK ``Resample`` (linear image + nearest mask) vs the fast path (separable basis + cv2.remap).
2. The full SCR preset (paper Table I bold row: shift 0.05, scale 0.05, translation 10 px,
   elastic 10 px): SimpleITK (composite translation + B-spline resample, NumPy intensity ops) vs
   :func:`gan_seg_aug.augment.ops.augment` inside ``tf.data.Dataset.map``.
3. :func:`gan_seg_aug.training.minibatches.make_train_dataset` batches/s for 16-pair 8-8 minibatches with the
   SCR preset, with a narrow stand-in generator and with the full-size thesis Table 4.1 generator.
4. One full-size U-Net (thesis Table 4.2) train step on a 16-pair batch.

Usage::

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/bench_augment.py [--unet-steps 1] [--skip-unet]
        [--skip-full-generator]

The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # oneDNN's pool, before TensorFlow starts
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SIDE = 256
PRESET = dict(shift_std=0.05, scale_std=0.05, translate_std=10.0, elastic_std=10.0, mesh=3, order=3)


def pin_one_thread():
    import cv2
    import SimpleITK as sitk
    import tensorflow as tf

    cv2.setNumThreads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


class Rate(float):
    """Calls per second of *process CPU time* (all threads): the per-core figure, robust to the
    other jobs on a shared machine.  ``.wall`` is the same per wall-clock second."""

    wall: float


def rate(fn, n: int, warmup: int = 1) -> Rate:
    for _ in range(warmup):
        fn()
    w, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    r = Rate(n / max(time.process_time() - c, 1e-9))
    r.wall = n / (time.perf_counter() - w)
    return r


def sitk_elastic_pair(image, mask, coeffs, translation=None):
    """What a SimpleITK pipeline does per pair: build the transform(s), resample both."""
    import SimpleITK as sitk

    from gan_seg_aug.augment.elastic import sitk_transform

    tx = sitk_transform(coeffs, SIDE, SIDE, PRESET["order"])
    if translation is not None:
        tx = sitk.CompositeTransform([sitk.TranslationTransform(2, translation), tx])
    img = sitk.GetImageFromArray(image[..., 0])
    msk = sitk.GetImageFromArray(mask)
    out_i = sitk.GetArrayFromImage(sitk.Resample(img, img, tx, sitk.sitkLinear, 0.0))
    out_m = sitk.GetArrayFromImage(sitk.Resample(msk, msk, tx, sitk.sitkNearestNeighbor, 0))
    return out_i, out_m


def bench_elastic(images, labels, rng, log):
    from gan_seg_aug.augment import elastic as E

    n_c = PRESET["mesh"] + PRESET["order"]
    draw = lambda: rng.normal(0, PRESET["elastic_std"], (2, n_c, n_c))  # noqa: E731
    k = iter(range(10 ** 9))

    def pick():
        i = next(k) % len(images)
        return images[i], labels[i]

    sitk_rate = rate(lambda: sitk_elastic_pair(*pick(), draw()), 40)
    fast_rate = rate(lambda: E.warp(*pick(), draw(), PRESET["order"]), 500, warmup=5)
    log(f"elastic only, 256^2 pair: SimpleITK {sitk_rate:.0f} pairs/s, fast path {fast_rate:.0f} pairs/s "
        f"({fast_rate / sitk_rate:.0f}x) per CPU second [wall: {sitk_rate.wall:.0f} / {fast_rate.wall:.0f}]")

    def sitk_full():
        image, mask = pick()
        t = rng.normal(0, PRESET["translate_std"], 2)
        out_i, out_m = sitk_elastic_pair(image, mask, draw(), translation=(float(t[1]), float(t[0])))
        return (out_i + rng.normal(0, PRESET["shift_std"])) * rng.normal(1, PRESET["scale_std"]), out_m

    sitk_full_rate = rate(sitk_full, 40)
    # agreement of the two on this data (the test suite checks it in detail)
    c = draw()
    diff = np.abs(E.displacement_field(c, SIDE, SIDE) - E.sitk_displacement_field(c, SIDE, SIDE)).max()
    return {"sitk_pairs_per_s": round(sitk_rate, 1), "fast_pairs_per_s": round(fast_rate, 1),
            "speedup": round(fast_rate / sitk_rate, 1), "sitk_pairs_per_s_wall": round(sitk_rate.wall, 1),
            "fast_pairs_per_s_wall": round(fast_rate.wall, 1), "field_max_abs_diff_px": float(diff)}, sitk_full_rate


def bench_tf_preset(images, labels, log):
    import tensorflow as tf

    from gan_seg_aug.augment.ops import augment
    from gan_seg_aug.augment.settings import AUG_PRESETS

    preset = AUG_PRESETS["scr_lung"]
    ds = (tf.data.Dataset.from_tensor_slices({"image": images, "mask": labels}).repeat().enumerate()
          .map(lambda k, s: augment(s, preset, k), num_parallel_calls=1).batch(16))
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    it = iter(ds.with_options(options))
    batches = rate(lambda: next(it), 30, warmup=3)
    log(f"full SCR preset in tf.data.Dataset.map (1 thread): {16 * batches:.0f} pairs/s per CPU second "
        f"[wall: {16 * batches.wall:.0f}]")
    out = Rate(16 * batches)
    out.wall = 16 * batches.wall
    return out


def stand_in_generator():
    from gan_seg_aug.nets.networks import build_generator

    return build_generator("scr_lung", width_div=32)  # Table 4.1 layout at 256^2, 1/32 of the kernels


def bench_pipeline(images, labels, generator, n_batches, log, what):
    from gan_seg_aug.augment.settings import AUG_PRESETS
    from gan_seg_aug.training.minibatches import GeneratorSampler, make_train_dataset

    sampler = GeneratorSampler(generator, 128, 2, seed=0, chunk=16)
    ds = make_train_dataset(images, labels, n_real=8, n_generated=8, sampler=sampler, n_classes=2,
                            aug=AUG_PRESETS["scr_lung"], seed=0)
    it = iter(ds)
    t0 = time.perf_counter()
    for _ in range(2):
        next(it)
    log(f"  ({what}: first 2 batches in {time.perf_counter() - t0:.1f} s)")
    r = rate(lambda: next(it), n_batches, warmup=0)
    log(f"8-8 pipeline with the SCR preset, {what}: {r:.2f} batches/s per CPU second ({1 / r:.2f} CPU s/batch) "
        f"[wall: {r.wall:.2f} batches/s]")
    return r


def bench_unet_step(images, labels, steps, log):
    import keras
    import tensorflow as tf

    from gan_seg_aug.nets.networks import build_unet
    from gan_seg_aug.training.unet_trainer import make_train_step

    model = build_unet("scr_lung")
    optimizer = keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9)
    step = make_train_step(model, optimizer)
    x = tf.constant(images[:16])
    y = tf.constant(labels[:16].astype(np.int32))
    t0 = time.perf_counter()
    float(step(x, y)["loss"])
    log(f"U-Net (Table 4.2, 256^2, batch 16) first step incl. tracing: {time.perf_counter() - t0:.1f} s")
    w, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        float(step(x, y)["loss"])
    s, wall = (time.process_time() - c) / steps, (time.perf_counter() - w) / steps
    log(f"U-Net train step: {s:.1f} CPU s/step over {steps} step(s) [wall: {wall:.1f} s]")
    return s, wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unet-steps", type=int, default=1, help="timed U-Net steps after one warm-up step")
    p.add_argument("--skip-unet", action="store_true", help="do not time the U-Net train step")
    p.add_argument("--skip-full-generator", action="store_true", help="stand-in generator only")
    p.add_argument("--pipeline-batches", type=int, default=12, help="timed batches per pipeline variant")
    args = p.parse_args(argv)
    if args.unet_steps < 1 or args.pipeline_batches < 1:
        p.error("--unet-steps and --pipeline-batches must be >= 1")
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    pin_one_thread()
    from gan_seg_aug.data.synthetic import make_scr_lung

    data = make_scr_lung(n_cases=16, seed=0)  # embedded stand-in data at the paper's 256^2
    images, labels = data.images, data.labels
    rng = np.random.default_rng(0)
    result = {"threads": 1, "per": "process CPU second (wall-clock figures in *_wall)",
              "load_average_1min": round(os.getloadavg()[0], 2), "image_size": [SIDE, SIDE], "scr_preset": PRESET}

    result["elastic_only"], sitk_full = bench_elastic(images, labels, rng, log)
    fast_full = bench_tf_preset(images, labels, log)
    result["full_preset"] = {"sitk_pairs_per_s": round(sitk_full, 1), "fast_tf_data_pairs_per_s": round(fast_full, 1),
                             "speedup": round(fast_full / sitk_full, 1),
                             "sitk_pairs_per_s_wall": round(sitk_full.wall, 1),
                             "fast_tf_data_pairs_per_s_wall": round(fast_full.wall, 1)}

    pipe = {"stand_in_generator": bench_pipeline(images, labels, stand_in_generator(), args.pipeline_batches, log,
                                                 "stand-in generator (width/32)")}
    if not args.skip_full_generator:
        from gan_seg_aug.nets.networks import build_generator

        pipe["full_size_generator"] = bench_pipeline(images, labels, build_generator("scr_lung"),
                                                     max(2, args.pipeline_batches // 3), log,
                                                     "full-size Table 4.1 generator")
    result["pipeline_8_8_batches_per_s"] = {k: round(v, 3) for k, v in pipe.items()}
    result["pipeline_8_8_batches_per_s_wall"] = {k: round(v.wall, 3) for k, v in pipe.items()}

    if not args.skip_unet:
        step_s, step_wall = bench_unet_step(images, labels, args.unet_steps, log)
        result["unet_train_step_s"] = round(step_s, 2)
        result["unet_train_step_s_wall"] = round(step_wall, 2)
        # > 1: on equal CPU, the pipeline makes batches faster than the U-Net consumes them
        result["pipeline_headroom"] = {k: round(v * step_s, 1) for k, v in pipe.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
