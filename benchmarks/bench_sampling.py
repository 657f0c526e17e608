#!/usr/bin/env python
"""Generator sampling speed (image+mask pairs per second), float32 vs mixed_bfloat16.

``python benchmarks/bench_sampling.py [--task scr_lung|cityscapes|both] [--quick] [--chunk 32]
[--rounds N] [--out results/bench/sampling.json]``

Paper §III: the U-Net is fed pairs sampled "on the fly" from the trained generator, so every
U-Net step of an R-G mix (Tables II / IV: 8-8 SCR, 4-4 Cityscapes) first needs G new pairs.
This measures, at the paper's FULL generator size (Tables 4.1a / 4.3a; ``--quick``: the ``cpu``
profile's), with untrained weights (the speed does not depend on them):

* ``generator``: the ``tf.function`` forward pass (``training=False``, batch-norm moving
  statistics) on a chunk of ``z ~ N(0, 1)`` -- pairs/s, analytic GFLOP/s and its ratio to the
  peak of the same dtype measured at the start of the run;
* ``sampler``: what the U-Net pipeline really pays per chunk, ``pipeline.GeneratorSampler``
  (NumPy z, forward pass, mask decoding with ``encoding.decode_mask``);
* ``ms_per_unet_minibatch``: the time to generate the G pairs of one paper minibatch.

Both precisions run in one fresh process per task, interleaved: every round measures the peak
(``hardware.measure_peak``) and then one chunk of each precision, and ratios (fraction of peak,
speed-up) are taken within a round, median over rounds -- the other jobs of a shared machine then
hit both precisions alike.  Rates use the fastest round.  The last line printed is ONE JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TASKS = ("scr_lung", "cityscapes")
PRECISIONS = ("float32", "mixed_bfloat16")
PAPER_GENERATED_PER_MINIBATCH = {"scr_lung": 8, "cityscapes": 4}  # Tables II / IV: 8-8, 4-4


def build(task: str, policy: str, quick: bool, chunk: int):
    """(generator forward on one chunk, one GeneratorSampler chunk, record) for one precision."""
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks import flops
    from gan_seg_aug.training import precision
    from gan_seg_aug.config import get_profile, task_spec
    from gan_seg_aug.nets.networks import build_generator
    from gan_seg_aug.training.minibatches import GeneratorSampler

    scale = get_profile("cpu" if quick else "paper").scale[task]
    with precision.set_precision(policy):
        keras.utils.set_random_seed(0)
        gen = build_generator(task, height=scale.height, width=scale.width, width_div=scale.gan_width_div)
    latent = gen.input.shape[-1]
    forward = tf.function(lambda z: gen(z, training=False))
    z = tf.constant(np.random.default_rng(0).standard_normal((chunk, latent), dtype=np.float32))
    stream = GeneratorSampler(gen, latent, task_spec(task).n_classes, seed=0, chunk=chunk)()
    t0 = time.perf_counter()
    forward(z).numpy()
    next(stream)  # traces the sampler's own tf.function
    record = {"task": task, "policy": policy, "height": scale.height, "width": scale.width,
              "width_div": scale.gan_width_div, "chunk": chunk, "parameters": int(gen.count_params()),
              "gflop_per_pair": flops.forward_flops(gen) / 1e9, "trace_s": time.perf_counter() - t0,
              "generator_s": [], "sampler_s": []}
    return (lambda: forward(z).numpy()), (lambda: next(stream)), record


def child(task: str, policies: list, quick: bool, chunk: int, rounds: int) -> dict:
    """All precisions in this one process, interleaved round by round (each round also measures
    the peak), so that the other jobs' load hits them alike."""
    from benchmarks import hardware

    built = {pol: build(task, pol, quick, chunk) for pol in policies}
    for gen_call, sample_call, _ in built.values():  # one untimed call each after tracing
        gen_call()
        sample_call()
    peaks = []
    for _ in range(rounds):
        peaks.append(hardware.measure_peak(repeats=2))
        for gen_call, sample_call, rec in built.values():
            rec["generator_s"].append(min(hardware.time_call(gen_call, repeats=1, warmup=0, sync=lambda r: r)))
            rec["sampler_s"].append(min(hardware.time_call(sample_call, repeats=1, warmup=0, sync=lambda r: r)))
    return {"records": [rec for _, _, rec in built.values()], "peaks": peaks, "peak_rss_mb": hardware.peak_rss_mb()}


def summarise(res: dict) -> list:
    peaks, rows, base = res["peaks"], [], None
    for rec in res["records"]:
        dtype = "bfloat16" if rec["policy"] == "mixed_bfloat16" else "float32"
        g, s, chunk = rec["generator_s"], rec["sampler_s"], rec["chunk"]
        gflop = rec["gflop_per_pair"] * chunk
        n_gen = PAPER_GENERATED_PER_MINIBATCH[rec["task"]]
        row = {**rec, "generator_pairs_per_s": chunk / min(g), "generator_gflops_per_s": gflop / min(g),
               "fraction_of_dtype_peak": statistics.median(gflop / t / p[f"{dtype}_gflops"] for t, p in zip(g, peaks)),
               "sampler_pairs_per_s": chunk / min(s), "decode_overhead": min(s) / min(g) - 1.0,
               "generated_per_unet_minibatch": n_gen, "ms_per_unet_minibatch": 1e3 * min(s) * n_gen / chunk}
        if rec["policy"] == "float32":
            base = s
        row["speedup_vs_float32"] = statistics.median(b / t for b, t in zip(base, s)) if base else None
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=TASKS + ("both",), default="both")
    p.add_argument("--quick", action="store_true", help="cpu-profile generators instead of the paper's")
    p.add_argument("--chunk", type=int, default=32, help="pairs per generator call (GeneratorSampler's default 32)")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds, one chunk per precision per round "
                                                         "(default 3 full size, 8 quick)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated subset of %(default)s")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here (atomically)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "task:policy" in a child
    args = p.parse_args(argv)
    rounds = args.rounds or (8 if args.quick else 3)
    policies = [s.strip() for s in args.precisions.split(",") if s.strip()]
    if args.chunk < 1 or rounds < 1 or not policies or any(s not in PRECISIONS for s in policies):
        p.error(f"need --chunk >= 1, --rounds >= 1 and --precisions a subset of {', '.join(PRECISIONS)}")

    if args.one:
        task, names = args.one.split(":")
        print(json.dumps(child(task, names.split(","), args.quick, args.chunk, rounds)), flush=True)
        return 0

    from benchmarks import hardware

    device = hardware.describe_device()
    print(f"device: {hardware.format_device(device)}", flush=True)
    results = []
    for task in (TASKS if args.task == "both" else (args.task,)):
        res = hardware.run_isolated([__file__, "--one", f"{task}:{','.join(policies)}", "--chunk", args.chunk,
                                     "--rounds", rounds] + (["--quick"] if args.quick else []))
        p32 = statistics.median(pk["float32_gflops"] for pk in res["peaks"])
        p16 = statistics.median(pk["bfloat16_gflops"] for pk in res["peaks"])
        print(f"{task:10s} peak during the rounds: float32 {p32:.0f}, bfloat16 {p16:.0f} GFLOP/s; process peak RSS "
              f"{res['peak_rss_mb']:.0f} MiB", flush=True)
        for r in summarise(res):
            results.append(r)
            print(f"{task:10s} {r['policy']:15s} {r['height']}x{r['width']}: generator {r['generator_pairs_per_s']:7.1f} "
                  f"pairs/s ({r['generator_gflops_per_s']:6.1f} GFLOP/s, {r['fraction_of_dtype_peak']:5.1%} of its "
                  f"dtype's peak) | sampler {r['sampler_pairs_per_s']:7.1f} pairs/s (decode {r['decode_overhead']:+.0%}) "
                  f"| {r['ms_per_unet_minibatch']:7.1f} ms per {r['generated_per_unet_minibatch']} generated pairs "
                  f"| x{(r['speedup_vs_float32'] or float('nan')):.2f} vs float32", flush=True)
    summary = {"benchmark": "generator_sampling", "quick": args.quick, "chunk": args.chunk, "rounds": rounds,
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "device": device, "results": results}
    hardware.emit_summary(summary, args.out, "bench_sampling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
