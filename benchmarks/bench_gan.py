#!/usr/bin/env python
"""How fast is one WGAN-GP iteration, and how close to this machine's peak is it?

``python benchmarks/bench_gan.py [--task scr_lung|cityscapes] [--reps 3] [--quick]``

Times, after warm-up (tracing and graph optimisation excluded): one critic step, one generator
step and one full iteration (5 critic steps on fresh minibatches + 1 generator step, thesis
Algorithm 4) at the paper's FULL size (Tables 4.1 / 4.3: SCR 256x256, batch 16; Cityscapes
128x256, batch 8).  ``--quick`` runs the smoke-profile size instead (a dry run of the script).

Analytic FLOP count (``gan_seg_aug/flops.py``, where the convention is argued): multiply-adds
x 2 of the conv / transposed-conv / dense layers only (batch norm, ReLU, tanh, the optimiser and
other element-wise work are not counted -- memory-bound and small next to the convolutions).
With F_G, F_D one forward pass of generator / critic over the minibatch, and a training pass
(forward + input and weight gradients) ~ 3 F:

* critic step = F_G (make fakes, no gradient) + 3 F_D (real) + 3 F_D (fake)
  + 6 F_D for the gradient penalty: forward on x̂ (1), input gradient (1), and the weight
  gradient of the penalty, which backpropagates through both of those graphs (2 + 2).
  Total F_G + 12 F_D.
* generator step = 3 F_G + 2 F_D (critic forward + input gradient only).
* iteration = 5 critic steps + 1 generator step.

Peak: the best of a few 4096 x 4096 float32 ``tf.linalg.matmul`` (2 n^3 FLOPs) timed in the same
run.  The last line printed is ONE JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def matmul_peak(n: int, reps: int) -> float:
    """GFLOP/s of an n x n float32 matmul (best of ``reps``, after one warm-up)."""
    import tensorflow as tf

    from gan_seg_aug.hardware import time_call

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    return 2 * n ** 3 / min(time_call(lambda: tf.linalg.matmul(a, b), repeats=reps)) / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Time WGAN-GP critic / generator steps and iterations at full size.")
    p.add_argument("--task", choices=("scr_lung", "cityscapes"), default="scr_lung")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions of each measurement (best is reported)")
    p.add_argument("--critic-norm", choices=("batch", "layer", "none"), default="batch")
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    p.add_argument("--quick", action="store_true", help="smoke-profile size and a 1024 matmul: a dry run")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error(f"--reps must be >= 1, got {args.reps}")

    import numpy as np
    import tensorflow as tf

    from gan_seg_aug import flops, hardware
    from gan_seg_aug.config import gan_config
    from gan_seg_aug.gan import WGANGP, make_optimizer
    from gan_seg_aug.gan_training import build_networks

    cfg = gan_config(args.task, "smoke" if args.quick else "paper", critic_norm=args.critic_norm,
                     precision=args.precision)
    g, d = build_networks(cfg)
    model = WGANGP(g, d, latent_dim=cfg.latent_dim, gp_lambda=cfg.gp_lambda, n_critic=cfg.n_critic)
    model.compile(g_optimizer=make_optimizer(), d_optimizer=make_optimizer())
    shape = (cfg.n_critic, cfg.batch_size, cfg.height, cfg.width, g.output.shape[-1])
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
    batch = tf.constant(cfg.batch_size)
    steps = {
        "critic_step": lambda: float(model.critic_step(real[0])[0]),
        "generator_step": lambda: float(model.generator_step(batch)),
        "iteration": lambda: float(model.train_step(real)["gen_loss"]),
    }
    device = hardware.describe_device()
    print(f"{args.task} {cfg.height}x{cfg.width}, batch {cfg.batch_size}, width_div {cfg.gan_width_div}, "
          f"critic norm {cfg.critic_norm}, {cfg.precision}: "
          f"G {g.count_params():,} / D {d.count_params():,} parameters; "
          f"{hardware.format_device(device)}", flush=True)
    warm = {}
    for name, fn in steps.items():  # the first call traces and optimises the graph
        t = time.perf_counter()
        fn()
        warm[name] = time.perf_counter() - t
        print(f"warm-up {name}: {warm[name]:.2f} s", flush=True)

    b = cfg.batch_size
    counts = {"critic_step": flops.critic_step_flops(g, d, b), "generator_step": flops.generator_step_flops(g, d, b),
              "iteration": flops.wgan_gp_iteration_flops(g, d, b, cfg.n_critic)}
    res = {"task": args.task, "height": cfg.height, "width": cfg.width, "batch": b,
           "width_div": cfg.gan_width_div, "critic_norm": cfg.critic_norm,
           "precision": cfg.precision, "quick": args.quick, "reps": args.reps,
           "forward_gflop_per_sample": {"generator": flops.forward_flops(g) / 1e9,
                                        "critic": flops.forward_flops(d) / 1e9},
           "warmup_s": warm, "device": device}
    for name, fn in steps.items():
        times = hardware.time_call(fn, repeats=args.reps, warmup=0)
        best = min(times)
        res[name] = {"ms": round(best * 1e3, 2), "all_ms": [round(t * 1e3, 2) for t in times],
                     "gflop": round(counts[name] / 1e9, 3), "gflops_per_s": round(counts[name] / best / 1e9, 2)}
        print(f"{name:15s} {best * 1e3:10.1f} ms  {counts[name] / 1e9:9.1f} GFLOP  "
              f"{counts[name] / best / 1e9:7.1f} GFLOP/s", flush=True)
    n = 1024 if args.quick else 4096
    peak = matmul_peak(n, max(args.reps, 2))
    res["peak_matmul"] = {"n": n, "gflops_per_s": round(peak, 2)}
    res["iteration"]["fraction_of_peak"] = round(res["iteration"]["gflops_per_s"] / peak, 3)
    res["days_per_10k_iterations"] = round(10_000 * res["iteration"]["ms"] / 1e3 / 86400, 2)
    print(f"peak ({n}^2 float32 matmul): {peak:.1f} GFLOP/s; an iteration reaches "
          f"{res['iteration']['fraction_of_peak']:.0%} of it; 10,000 iterations at this speed: "
          f"{res['days_per_10k_iterations']} days")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
