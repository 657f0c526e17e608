#!/usr/bin/env python
"""How fast is one WGAN-GP iteration, float32 vs mixed_bfloat16, and how close to this machine's peak?

``python benchmarks/bench_gan.py [--task scr_lung|cityscapes] [--quick | --profile paper|cpu|smoke]
[--precision float32,mixed_bfloat16] [--critic-norm NORM] [--rounds N] [--warmup N]
[--out results/bench/gan.json]``

Times ``WGANGP.train_step(real_batches)`` -- ONE full iteration of thesis Algorithm 4 (5 critic
updates, each on its own real minibatch, then 1 generator update; ``real_batches`` is
``[n_critic, B, H, W, C]``) -- at the paper's FULL size by default (Tables 4.1 / 4.3: SCR 256x256,
batch 16; Cityscapes 128x256, batch 8); ``--quick`` = the ``cpu`` profile's networks.  Nothing
else is timed: the per-step methods are internal to the iteration.

Analytic FLOPs (``benchmarks/flops.py``, where the convention is argued): 2 x the multiply-adds
of the conv / transposed-conv / dense layers only, 5 x (F_G + 12 F_D) + 3 F_G + 2 F_D per
iteration.  Batch norm (and its second-order gradient through the penalty), ReLU and Adam are
real time but are not counted.

All precisions are built in this ONE process and measured interleaved, like ``bench_unet.py``:
every round measures the peak (``hardware.measure_peak``: float32 and bfloat16 matmul / 3x3 conv)
and then one iteration of each precision, so that the other jobs of a shared machine hit them
alike.  Fractions of peak and the bf16 speed-up are per-round ratios, median over rounds; ms and
GFLOP/s use the fastest round.  The last line printed is ONE JSON object with every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PRECISIONS = ("float32", "mixed_bfloat16")
GOAL_FRACTION_OF_F32_PEAK = 0.70  # goal: a WGAN-GP iteration at >= 70 % of the measured float32 peak


from gan_seg_aug.config import CRITIC_NORMS, GANConfig  # noqa: E402  (no TensorFlow)


def build_iteration(task: str, precision: str, *, profile: str = "paper", critic_norm: str | None = None,
                    seed: int = 0):
    """``(iteration, record)``: a call running one ``WGANGP.train_step`` on fixed real minibatches,
    and what it computes (size, parameters, analytic GFLOP per iteration, first-call seconds)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks import flops
    from benchmarks import hardware
    from gan_seg_aug.config import gan_config
    from gan_seg_aug.training.wgan_gp import WGANGP, make_optimizer
    from gan_seg_aug.training.gan_trainer import build_networks

    cfg = gan_config(task, profile, precision=precision, **({"critic_norm": critic_norm} if critic_norm else {}))
    keras.utils.set_random_seed(seed)
    g, d = build_networks(cfg)
    model = WGANGP(g, d, latent_dim=cfg.latent_dim, gp_lambda=cfg.gp_lambda, n_critic=cfg.n_critic)
    model.compile(g_optimizer=make_optimizer(), d_optimizer=make_optimizer())
    shape = (cfg.n_critic, cfg.batch_size, cfg.height, cfg.width, g.output.shape[-1])
    real = tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))

    def iteration():
        return model.train_step(real)

    first = hardware.time_call(iteration, repeats=1, warmup=0)[0]  # traces and optimises the graphs
    b = cfg.batch_size
    record = {"task": task, "profile": profile, "policy": precision, "height": cfg.height, "width": cfg.width,
              "batch": b, "width_div": cfg.gan_width_div, "critic_norm": cfg.critic_norm, "n_critic": cfg.n_critic,
              "parameters": {"generator": int(g.count_params()), "critic": int(d.count_params())},
              "forward_gflop_per_sample": {"generator": flops.forward_flops(g) / 1e9,
                                           "critic": flops.forward_flops(d) / 1e9},
              "gflop_per_step": flops.wgan_gp_iteration_flops(g, d, b, cfg.n_critic) / 1e9,
              "compile_s": first}
    return iteration, record


def interleaved_rounds(steps: dict, rounds: int, *, warmup: int = 0, extra=None, log=None) -> dict:
    """Measure the peak, then one call of each step (then ``extra()``, if given), ``rounds`` times.

    ``steps``: name -> call (its result is blocked on).  Returns ``{"times_s": {name: [wall s per
    round]}, "cpu_s": {name: [process CPU s per round]}, "peaks": [hardware.measure_peak() per
    round], "extra": [extra() per round]}``.  Ratios should be taken within a round.
    """
    from benchmarks import hardware

    for step in steps.values() if warmup else ():
        hardware.time_call(step, repeats=warmup, warmup=0)
    out = {"times_s": {name: [] for name in steps}, "cpu_s": {name: [] for name in steps}, "peaks": [], "extra": []}
    for r in range(rounds):
        out["peaks"].append(hardware.measure_peak(repeats=2))
        for name, step in steps.items():
            cpu = time.process_time()
            out["times_s"][name].append(hardware.time_call(step, repeats=1, warmup=0)[0])
            out["cpu_s"][name].append(time.process_time() - cpu)
        if extra is not None:
            out["extra"].append(extra())
        if log:
            log(f"round {r + 1}/{rounds}: peak float32 {out['peaks'][-1]['float32_gflops']:.0f} GFLOP/s | "
                + " | ".join(f"{name} {t[-1]:.2f} s" for name, t in out["times_s"].items()))
    return out


def summarise(records: dict, measured: dict, prefix: str = "") -> list:
    """Rows of ``bench_unet.summarise`` (ms, GFLOP/s, fractions of peak, x vs float32, all
    per-round medians) for ``records`` = precision -> record with ``gflop_per_step``, whose
    rounds are ``measured[...][prefix + precision]`` of :func:`interleaved_rounds`."""
    from bench_unet import summarise as summarise_rounds

    speed = {"variants": {p: {**rec, "times_s": measured["times_s"][prefix + p], "cpu_s": measured["cpu_s"][prefix + p]}
                          for p, rec in records.items()},
             "peaks": measured["peaks"]}
    return summarise_rounds(speed, {})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=("scr_lung", "cityscapes"), default="scr_lung")
    p.add_argument("--profile", choices=("paper", "cpu", "smoke"), default="paper",
                   help="network size (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="same as --profile cpu")
    p.add_argument("--precision", default=",".join(PRECISIONS), help="comma-separated subset of %(default)s, "
                                                                     "interleaved in one process")
    p.add_argument("--critic-norm", choices=CRITIC_NORMS, default=GANConfig.critic_norm,
                   help="critic normalisation (default: the project's, %(default)s)")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 3 full size, 6 otherwise)")
    p.add_argument("--warmup", type=int, default=-1, help="untimed iterations after the first call "
                                                          "(default 0 full size, 2 otherwise)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here (atomically)")
    args = p.parse_args(argv)
    profile = "cpu" if args.quick else args.profile
    precisions = [s.strip() for s in args.precision.split(",") if s.strip()]
    if not precisions or any(s not in PRECISIONS for s in precisions) or len(set(precisions)) < len(precisions):
        p.error(f"--precision: expected a comma-separated subset of {', '.join(PRECISIONS)}, got {args.precision!r}")
    rounds = args.rounds or (3 if profile == "paper" else 6)
    warmup = args.warmup if args.warmup >= 0 else (0 if profile == "paper" else 2)
    if rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")

    from benchmarks import hardware

    device = hardware.describe_device()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    log(f"device: {hardware.format_device(device)}")
    steps, records = {}, {}
    for prec in precisions:
        steps[prec], records[prec] = build_iteration(args.task, prec, profile=profile, critic_norm=args.critic_norm)
        r = records[prec]
        log(f"{args.task} {r['height']}x{r['width']} batch {r['batch']} width_div {r['width_div']} critic norm "
            f"{r['critic_norm']} {prec}: G {r['parameters']['generator']:,} / D {r['parameters']['critic']:,} "
            f"parameters, {r['gflop_per_step']:.0f} GFLOP/iteration, first call {r['compile_s']:.1f} s")
    measured = interleaved_rounds(steps, rounds, warmup=warmup, log=log)
    rows = summarise(records, measured)
    p32 = statistics.median(pk["float32_gflops"] for pk in measured["peaks"])
    p16 = statistics.median(pk["bfloat16_gflops"] for pk in measured["peaks"])
    log(f"peak during the rounds: float32 {p32:.0f}, bfloat16 {p16:.0f} GFLOP/s (median of {rounds})")
    for row in rows:
        row["days_per_10k_iterations"] = 10_000 * row["ms_median"] / 1e3 / 86400
        log(f"{row['policy']:15s} {row['ms_median'] / 1e3:8.2f} s/iteration (min {row['ms_min'] / 1e3:.2f}) | "
            f"{row['gflops_per_s']:6.1f} GFLOP/s | {row['fraction_of_float32_peak']:5.1%} of float32's peak, "
            f"{row['fraction_of_dtype_peak']:5.1%} of its dtype's | "
            + (f"x{row['speedup_vs_float32']:.2f} vs float32 | " if row["speedup_vs_float32"] else "")
            + f"10,000 iterations: {row['days_per_10k_iterations']:.2f} days")
    f32 = next((r for r in rows if r["policy"] == "float32"), None)
    summary = {"benchmark": "wgan_gp_iteration", "task": args.task, "profile": profile, "rounds": rounds,
               "warmup": warmup, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "device": device, "results": rows,
               "peaks": measured["peaks"], "peak_rss_mb": hardware.peak_rss_mb(),
               "goals": {"fraction_of_float32_peak_goal": GOAL_FRACTION_OF_F32_PEAK,
                         "fraction_of_float32_peak_measured": f32 and f32["fraction_of_float32_peak"],
                         "goal_met": bool(f32) and profile == "paper"
                         and f32["fraction_of_float32_peak"] >= GOAL_FRACTION_OF_F32_PEAK}}
    hardware.emit_summary(summary, args.out, "bench_gan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
