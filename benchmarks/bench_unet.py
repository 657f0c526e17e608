#!/usr/bin/env python
"""U-Net training-step speed: float32 vs mixed_bfloat16 vs XLA, against this machine's measured peak.

``python benchmarks/bench_unet.py [--task scr_lung|cityscapes|both] [--quick] [--variants ...]
[--rounds N] [--warmup N] [--no-memory] [--out results/bench/unet.json]``

One training step = thesis §2.6.3 softmax cross-entropy over every pixel + Adam(1e-4, 0.5, 0.9)
(Tables 4.2 / 4.4) on one minibatch of the paper size (16 SCR pairs of 256x256 / 8 Cityscapes
pairs of 128x256, the full Table 4.2 / 4.4 networks).  ``--quick`` uses the ``cpu`` profile's
networks and resolution instead (seconds rather than minutes).

Variants: ``float32`` (the reference), ``mixed_bfloat16`` (Keras mixed policy: bfloat16 compute,
float32 variables and loss), ``xla`` (float32, ``tf.function(jit_compile=True)``), ``xla_bf16``
(both; not in the default list).

How it measures, for figures that mean something on a machine shared with other jobs:

1. Memory: each variant alone in a fresh process (first call = trace / XLA compile, then one
   step) -> compile seconds and the process's peak RSS (``--no-memory`` skips this phase).
2. Speed: all variants in ONE process, interleaved: every round measures the float32 and
   bfloat16 peak (``hardware.measure_peak``) and then one step of each variant.  The other
   jobs' load then hits all variants alike, and every ratio (speed-up over float32, fraction of
   peak) is taken within a round and the median over rounds reported.

Per variant: ms/step (min and median), analytic GFLOP/s (``benchmarks/flops.py``: 3 x forward
MACs x 2 of the convs) at the min, the median-over-rounds fraction of the same dtype's peak and of
the float32 peak, the median-over-rounds speed-up over float32.  The last line printed is ONE JSON
object with everything.
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

VARIANTS = {"float32": ("float32", False), "mixed_bfloat16": ("mixed_bfloat16", False),
            "xla": ("float32", True), "xla_bf16": ("mixed_bfloat16", True)}
DEFAULT_VARIANTS = ("float32", "mixed_bfloat16", "xla")
TASKS = ("scr_lung", "cityscapes")
BF16_GOAL = 2.0  # goal: bfloat16 >= 2x float32 throughput


def net_size(task: str, quick: bool, batch: int = 0) -> dict:
    from gan_seg_aug.config import get_profile, task_spec

    spec, scale = task_spec(task), get_profile("cpu" if quick else "paper").scale[task]
    return {"height": scale.height, "width": scale.width, "width_div": scale.unet_width_div,
            "batch": batch or spec.unet_batch}


def build_step(task: str, variant: str, size: dict):
    """(step, x, y, train-step FLOPs) of one variant: the training code's loss and Adam update."""
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks import flops
    from gan_seg_aug.training import precision
    from gan_seg_aug.training.wgan_gp import make_optimizer
    from gan_seg_aug.nets.networks import build_unet
    from gan_seg_aug.training.unet_trainer import make_train_step

    policy, jit = VARIANTS[variant]
    with precision.set_precision(policy):
        keras.utils.set_random_seed(0)
        model = build_unet(task, height=size["height"], width=size["width"], width_div=size["width_div"])
    optimizer = make_optimizer()
    optimizer.build(model.trainable_variables)
    b = size["batch"]
    step = make_train_step(model, optimizer, jit_compile=jit)
    rng = np.random.default_rng(0)
    shape = (b, size["height"], size["width"])
    x = tf.constant(rng.uniform(-1, 1, shape + (model.input.shape[-1],)).astype(np.float32))
    y = tf.constant(rng.integers(0, model.output.shape[-1], shape).astype(np.int32))
    return (lambda: step(x, y)["loss"].numpy()), flops.train_step_flops(model, b), int(model.count_params())


def child_memory(task: str, variant: str, size: dict) -> dict:
    """Phase 1, in a fresh process: compile time and peak RSS of one variant alone."""
    from benchmarks import hardware

    step, _, _ = build_step(task, variant, size)
    t0 = time.perf_counter()
    step()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    return {"compile_s": compile_s, "one_step_s": time.perf_counter() - t0, "peak_rss_mb": hardware.peak_rss_mb()}


def child_speed(task: str, variants: list, size: dict, rounds: int, warmup: int) -> dict:
    """Phase 2, all variants in this one process, interleaved round by round."""
    from benchmarks import hardware

    steps, out = {}, {}
    for v in variants:
        try:
            step, flop, params = build_step(task, v, size)
            t0 = time.perf_counter()
            step()
            out[v] = {"compile_s": time.perf_counter() - t0, "gflop_per_step": flop / 1e9, "parameters": params,
                      "times_s": []}
            for _ in range(warmup):
                step()
            steps[v] = step
        except Exception as e:  # e.g. XLA's CPU compiler rejecting the bf16 graph: report it, measure the rest
            out[v] = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"}
    peaks = []
    for _ in range(rounds):
        peaks.append(hardware.measure_peak(repeats=2))
        for v, step in steps.items():
            out[v]["times_s"].append(min(hardware.time_call(step, repeats=1, warmup=0, sync=lambda r: r)))
    return {"variants": out, "peaks": peaks, "peak_rss_mb": hardware.peak_rss_mb()}


def summarise(speed: dict, memory: dict) -> list:
    peaks, rows = speed["peaks"], []
    base = speed["variants"].get("float32", {}).get("times_s")
    for v, r in speed["variants"].items():
        row = {"variant": v, "policy": VARIANTS[v][0], "jit_compile": VARIANTS[v][1], **r}
        if "error" not in r:
            dtype = "bfloat16" if row["policy"] == "mixed_bfloat16" else "float32"
            t = r["times_s"]
            rates = [r["gflop_per_step"] / s for s in t]
            row.update({
                "ms_min": 1e3 * min(t), "ms_median": 1e3 * statistics.median(t),
                "gflops_per_s": r["gflop_per_step"] / min(t),
                "fraction_of_dtype_peak": statistics.median(x / p[f"{dtype}_gflops"] for x, p in zip(rates, peaks)),
                "fraction_of_float32_peak": statistics.median(x / p["float32_gflops"] for x, p in zip(rates, peaks)),
                "speedup_vs_float32": statistics.median(b / s for b, s in zip(base, t)) if base else None})
        row.update({f"alone_{k}": val for k, val in memory.get(v, {}).items()})
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=TASKS + ("both",), default="both")
    p.add_argument("--quick", action="store_true", help="cpu-profile networks and resolution instead of the paper's")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated subset of {', '.join(VARIANTS)} (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds, one step of each variant per round "
                                                         "(default 3 full size, 8 quick)")
    p.add_argument("--warmup", type=int, default=-1, help="untimed steps after the first call (default 0 full, 2 quick)")
    p.add_argument("--batch", type=int, default=0, help="minibatch size (default: the paper's, 16 SCR / 8 Cityscapes)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant isolated memory phase")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here (atomically)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: "memory|speed:task:v1,v2"
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        p.error(f"--variants: unknown {bad or 'empty list'}; expected a comma-separated subset of {', '.join(VARIANTS)}")
    rounds = args.rounds or (8 if args.quick else 3)
    warmup = args.warmup if args.warmup >= 0 else (2 if args.quick else 0)
    if rounds < 1 or args.batch < 0:
        p.error("--rounds must be >= 1 and --batch >= 0")

    if args.child:
        phase, task, names = args.child.split(":")
        size = net_size(task, args.quick, args.batch)
        res = child_memory(task, names, size) if phase == "memory" else \
            child_speed(task, names.split(","), size, rounds, warmup)
        print(json.dumps(res), flush=True)
        return 0

    from benchmarks import hardware

    device = hardware.describe_device()
    print(f"device: {hardware.format_device(device)}", flush=True)
    common = ["--rounds", rounds, "--warmup", warmup, "--batch", args.batch] + (["--quick"] if args.quick else [])
    results = []
    for task in (TASKS if args.task == "both" else (args.task,)):
        size = net_size(task, args.quick, args.batch)
        memory = {}
        for v in ([] if args.no_memory else variants):
            try:
                memory[v] = hardware.run_isolated([__file__, "--child", f"memory:{task}:{v}", *common])
            except RuntimeError as e:
                memory[v] = {"error": str(e).strip().splitlines()[-1][:300]}
            print(f"{task:10s} {v:15s} alone: {json.dumps(memory[v])}", flush=True)
        speed = hardware.run_isolated([__file__, "--child", f"speed:{task}:{','.join(variants)}", *common])
        p32 = statistics.median(pk["float32_gflops"] for pk in speed["peaks"])
        p16 = statistics.median(pk["bfloat16_gflops"] for pk in speed["peaks"])
        print(f"{task:10s} {size['height']}x{size['width']} batch {size['batch']}: peak during the rounds "
              f"float32 {p32:.0f}, bfloat16 {p16:.0f} GFLOP/s (median of {rounds})", flush=True)
        for row in summarise(speed, memory):
            row.update({"task": task, **size})
            results.append(row)
            if "error" in row:
                print(f"{task:10s} {row['variant']:15s} FAILED: {row['error']}", flush=True)
                continue
            print(f"{task:10s} {row['variant']:15s} {row['ms_median']:9.1f} ms/step (min {row['ms_min']:.1f}) "
                  f"| {row['gflops_per_s']:6.1f} GFLOP/s | {row['fraction_of_dtype_peak']:5.1%} of its dtype's "
                  f"peak, {row['fraction_of_float32_peak']:5.1%} of float32's | x{row['speedup_vs_float32'] or 0:.2f} "
                  f"vs float32 | compile {row['compile_s']:.1f} s | alone RSS "
                  f"{row.get('alone_peak_rss_mb', float('nan')):.0f} MiB", flush=True)
    bf16 = [r["speedup_vs_float32"] for r in results if r["variant"] == "mixed_bfloat16" and r.get("speedup_vs_float32")]
    summary = {"benchmark": "unet_train_step", "quick": args.quick, "rounds": rounds, "warmup": warmup,
               "date": time.strftime("%Y-%m-%d %H:%M %Z"), "device": device, "results": results,
               "goals": {"bf16_speedup_goal": BF16_GOAL, "bf16_speedup_measured": bf16,
                         "bf16_goal_met": bool(bf16) and min(bf16) >= BF16_GOAL}}
    hardware.emit_summary(summary, args.out, "bench_unet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
