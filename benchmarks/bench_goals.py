#!/usr/bin/env python
"""The three speed goals, measured together in ONE process and ONE run, ending with a goal table.

``python benchmarks/bench_goals.py [--quick] [--rounds N] [--pipeline-batches N] [--out FILE]``

The speed goals, all on SCR Lung:

(a) a WGAN-GP iteration (``WGANGP.train_step``, thesis Algorithm 4, full-size Table 4.1 networks,
    batch 16) reaches >= 70 % of the float32 peak measured in the same round;
(b) ``mixed_bfloat16`` gives >= 2x the float32 throughput (issue 7), and >= 90 % of the machine's own
    bf16/float32 peak ratio measured in the same round (issue 13), for the U-Net training step (Table 4.2,
    batch 16) and for the WGAN-GP iteration;
(c) the input pipeline (``pipeline.make_train_dataset``, 8 real + 8 generated pairs per minibatch,
    a full-size ``GeneratorSampler``, the SCR augmentation preset on) delivers minibatches >= 5x
    faster than the U-Net training step consumes them (float32 step; the bf16 step is shown too).

Every round measures the peak (``hardware.measure_peak``), then one GAN iteration and one U-Net
step in each precision, then the pipeline (a fresh iterator: 2 untimed minibatches, then
``--pipeline-batches`` timed ones; ``bench_augment.bench_pipeline``, in training's own tf.data
threading).  On a shared machine every ratio is taken within a round and the median over rounds
is reported.  The pipeline/U-Net ratio is given per wall-clock second (each running alone on the
machine's cores) and per process CPU second (robust to the other jobs' load).

``--quick`` runs the ``cpu`` profile's networks (128x128, narrower) and the pipeline at 128x128
with the cpu-profile generator: about a minute, and NOT the goals' sizes -- its table says so.
The full run (paper sizes, ~8 GiB) took 6-7 minutes on 2 shared cores.  The last line is ONE JSON
object.
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

_omp = os.environ.get("OMP_NUM_THREADS")
import bench_augment  # noqa: E402

if _omp is None:  # bench_augment pins oneDNN to one thread for its per-core figures; the goals use all cores
    os.environ.pop("OMP_NUM_THREADS", None)
import bench_gan  # noqa: E402
import bench_unet  # noqa: E402

TASK = "scr_lung"
PRECISIONS = ("float32", "mixed_bfloat16")
BF16_GOAL = bench_unet.BF16_GOAL
PIPELINE_GOAL = 5.0  # goal: the data pipeline >= 5x faster than the train step consumes
# issue 13: bf16's speed-up should reach 90 % of what the hardware itself gains (its bf16/f32 peak ratio),
# a goal that moves with the machine, unlike issue 7's fixed 2x (unreachable where that ratio is below 2)
BF16_OF_PEAK_RATIO_GOAL = 0.90


def bf16_fraction_of_peak_ratio(t32: list, t16: list, peaks: list) -> float:
    """Median over rounds of (float32 time / bf16 time) / (bf16 peak / float32 peak), both per round.

    >>> bf16_fraction_of_peak_ratio([2.0, 3.0, 2.0], [1.25, 2.0, 1.0],
    ...     [{"float32_gflops": 100, "bfloat16_gflops": 200}] * 3)
    0.8
    """
    fractions = [(a / b) / (pk["bfloat16_gflops"] / pk["float32_gflops"]) for a, b, pk in zip(t32, t16, peaks)]
    return _median(fractions)


def build_unet_step(variant: str, size: dict):
    """``(step, record)`` of ``bench_unet.build_step`` (the training code's loss and Adam update),
    its first call (tracing) timed."""
    from benchmarks import hardware

    step, flop, params = bench_unet.build_step(TASK, variant, size)
    first = hardware.time_call(step, repeats=1, warmup=0)[0]
    return step, {**size, "policy": variant, "parameters": params, "gflop_per_step": flop / 1e9, "compile_s": first}


def pipeline_probe(quick: bool, n_batches: int, log):
    """A call measuring the 8-8 pipeline once (``bench_augment.bench_pipeline``) -> its Rate."""
    from gan_seg_aug.config import get_profile
    from gan_seg_aug.data.synthetic import make_scr_lung
    from gan_seg_aug.nets.networks import build_generator

    scale = get_profile("cpu" if quick else "paper").scale[TASK]
    data = make_scr_lung(n_cases=16, seed=0)  # the embedded stand-in data at the paper's 256^2
    if quick:
        data = data.resized(scale.height, scale.width)
    generator = build_generator(TASK, height=scale.height, width=scale.width, width_div=scale.gan_width_div)
    what = f"{scale.height}x{scale.width} generator width/{scale.gan_width_div}"
    return lambda: bench_augment.bench_pipeline(data.images, data.labels, generator, n_batches, log, what)


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def goal_rows(gan: dict, unet: dict, measured: dict, quick: bool) -> list:
    """The goal table: (goal, target, measured, met)."""
    pipe_wall = [float(r.wall) for r in measured["extra"]]
    pipe_cpu = [float(r) for r in measured["extra"]]
    rows = [{"goal": "WGAN-GP iteration, % of float32 peak (float32)", "target": ">= 70 %",
             "value": gan["float32"]["fraction_of_float32_peak"],
             "measured": f"{gan['float32']['fraction_of_float32_peak']:.0%}",
             "met": gan["float32"]["fraction_of_float32_peak"] >= bench_gan.GOAL_FRACTION_OF_F32_PEAK}]
    for name, key, res in (("U-Net step", "unet_", unet), ("WGAN-GP iteration", "gan_", gan)):
        x = res["mixed_bfloat16"]["speedup_vs_float32"]
        c32, c16 = measured["cpu_s"][key + "float32"], measured["cpu_s"][key + "mixed_bfloat16"]
        cpu = _median([a / b for a, b in zip(c32, c16)])
        rows.append({"goal": f"bf16 / float32 throughput, {name}", "target": f">= {BF16_GOAL:g}x", "value": x,
                     "value_cpu": cpu, "measured": f"x{x:.2f} wall (x{cpu:.2f} per CPU s)", "met": x >= BF16_GOAL})
        f = bf16_fraction_of_peak_ratio(measured["times_s"][key + "float32"], measured["times_s"][key + "mixed_bfloat16"],
                                        measured["peaks"])
        rows.append({"goal": f"bf16 speed-up / machine's bf16:f32 peak, {name}",
                     "target": f">= {BF16_OF_PEAK_RATIO_GOAL:.0%}", "value": f, "measured": f"{f:.0%}",
                     "met": f >= BF16_OF_PEAK_RATIO_GOAL})
    for prec in PRECISIONS:
        wall = _median([b * s for b, s in zip(pipe_wall, measured["times_s"]["unet_" + prec])])
        cpu = _median([b * s for b, s in zip(pipe_cpu, measured["cpu_s"]["unet_" + prec])])
        rows.append({"goal": f"8-8 pipeline / {prec} U-Net step consumption", "target": f">= {PIPELINE_GOAL:g}x",
                     "value": wall, "value_cpu": cpu, "measured": f"x{wall:.1f} wall (x{cpu:.1f} per CPU s)",
                     "met": wall >= PIPELINE_GOAL, "decides": prec == "float32"})
    for row in rows:
        row["met"] = bool(row["met"])
        row["at_goal_size"] = not quick
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="cpu-profile networks and 128x128 (about a minute; not the "
                                                        "goals' sizes)")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 5 full size, 12 quick)")
    p.add_argument("--pipeline-batches", type=int, default=0, help="timed pipeline minibatches per round "
                                                                   "(default 4 full size, 8 quick)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here (atomically)")
    args = p.parse_args(argv)
    rounds = args.rounds or (12 if args.quick else 5)
    n_batches = args.pipeline_batches or (8 if args.quick else 4)
    if rounds < 1 or n_batches < 1:
        p.error("--rounds and --pipeline-batches must be >= 1")
    profile = "cpu" if args.quick else "paper"

    from benchmarks import hardware

    t_start = time.perf_counter()
    device = hardware.describe_device()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    log(f"device: {hardware.format_device(device)}; {'QUICK (cpu-profile sizes)' if args.quick else 'paper sizes'}")
    steps, gan_rec, unet_rec = {}, {}, {}
    size = bench_unet.net_size(TASK, args.quick)
    for prec in PRECISIONS:
        steps["gan_" + prec], gan_rec[prec] = bench_gan.build_iteration(TASK, prec, profile=profile)
        steps["unet_" + prec], unet_rec[prec] = build_unet_step(prec, size)
        log(f"{prec}: WGAN-GP {gan_rec[prec]['height']}x{gan_rec[prec]['width']} width/{gan_rec[prec]['width_div']} "
            f"{gan_rec[prec]['gflop_per_step']:.0f} GFLOP/iteration (first call {gan_rec[prec]['compile_s']:.0f} s); "
            f"U-Net {size['height']}x{size['width']} width/{size['width_div']} {unet_rec[prec]['gflop_per_step']:.0f} "
            f"GFLOP/step (first call {unet_rec[prec]['compile_s']:.0f} s)")
    probe = pipeline_probe(args.quick, n_batches, lambda msg: None if msg.lstrip().startswith("(") else log(msg))
    measured = bench_gan.interleaved_rounds(steps, rounds, warmup=2 if args.quick else 0, extra=probe, log=log)
    gan = {r["policy"]: r for r in bench_gan.summarise(gan_rec, measured, prefix="gan_")}
    unet = {r["policy"]: r for r in bench_gan.summarise(unet_rec, measured, prefix="unet_")}
    rows = goal_rows(gan, unet, measured, args.quick)

    p32 = _median([pk["float32_gflops"] for pk in measured["peaks"]])
    p16 = _median([pk["bfloat16_gflops"] for pk in measured["peaks"]])
    log(f"\npeak during the rounds (median of {rounds}): float32 {p32:.0f}, bfloat16 {p16:.0f} GFLOP/s")
    for what, res in (("WGAN-GP iteration", gan), ("U-Net step", unet)):
        for prec, r in res.items():
            log(f"{what:18s} {prec:15s} {r['ms_median'] / 1e3:7.2f} s (min {r['ms_min'] / 1e3:.2f}) | "
                f"{r['gflops_per_s']:6.1f} GFLOP/s | {r['fraction_of_float32_peak']:5.1%} of float32 peak, "
                f"{r['fraction_of_dtype_peak']:5.1%} of its dtype's | x{r['speedup_vs_float32']:.2f} vs float32")
    pipe = measured["extra"]
    log(f"8-8 pipeline: {_median([r.wall for r in pipe]):.2f} minibatches/s wall, "
        f"{_median([float(r) for r in pipe]):.2f} per CPU second (median of {rounds})")
    note = "  [QUICK: cpu-profile sizes, not the goals' full sizes]" if args.quick else ""
    log(f"\n{'goal':62s} {'target':>8s}  {'measured':32s} met{note}")
    for row in rows:
        met = "yes" if row["met"] else "no"
        log(f"{row['goal']:62s} {row['target']:>8s}  {row['measured']:32s} {met}"
            + ("" if row.get("decides", True) else "  (shown, not the goal)"))
    summary = {"benchmark": "issue7_goals", "quick": args.quick, "profile": profile, "rounds": rounds,
               "pipeline_batches": n_batches, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "load_average_end": [round(x, 2) for x in os.getloadavg()], "device": device,
               "wall_s": round(time.perf_counter() - t_start, 1), "peak_rss_mb": hardware.peak_rss_mb(),
               "goals": rows, "peaks": measured["peaks"], "gan": list(gan.values()), "unet": list(unet.values()),
               "pipeline": {"batches_per_s_wall": [r.wall for r in pipe],
                            "batches_per_cpu_s": [float(r) for r in pipe]}}
    hardware.emit_summary(summary, args.out, "bench_goals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
