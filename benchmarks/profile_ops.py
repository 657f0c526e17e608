#!/usr/bin/env python
"""Where a step's time goes, by op type, in float32 and in ``mixed_bfloat16`` (``tf.profiler``).

``python benchmarks/profile_ops.py [--what gan|unet] [--quick] [--steps N] [--out FILE]``

The speed issue (13) asks for the profile behind every missed goal.  This runs one WGAN-GP iteration
(``bench_gan.build_iteration``) or one U-Net training step (``bench_unet.build_step``) under the
profiler in both precisions and sums the op time of TensorFlow's executor threads by op type, so
the two precisions can be compared kernel family by kernel family: which ops bf16 speeds up, which
it does not, and how much it adds (casts).  Op time is summed over threads, so it exceeds wall time
on a multi-core machine; the shares and the float32/bf16 ratios are what to read.

Full size (paper networks, SCR) takes ~4 minutes for the GAN; ``--quick`` (cpu-profile networks)
under a minute.  Run it on a quiet machine: other jobs inflate every op alike but add noise.
The last line is ONE JSON object.
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PRECISIONS = ("float32", "mixed_bfloat16")
# oneDNN's kernels carry an _Mkl / _MklNative prefix; matching the stem keeps plain TF builds working too
FAMILIES = {"conv forward": ("Conv2D", "FusedConv2D"),
            "conv input gradient": ("Conv2DBackpropInput",),
            "conv filter gradient": ("Conv2DBackpropFilter", "Conv2DBackpropFilterWithBias"),
            "matmul": ("MatMul", "BatchMatMulV2"),
            "cast": ("Cast",)}


def family(op_type: str) -> str:
    """The kernel family of a TensorFlow op type (``"other"`` for elementwise, reductions, Adam...).

    >>> family("_MklNativeConv2DBackpropFilterWithBias"), family("_MklNativeFusedConv2D"), family("Mul")
    ('conv filter gradient', 'conv forward', 'other')
    """
    stem = op_type.removeprefix("_MklNative").removeprefix("_Mkl").removeprefix("_")
    for name, stems in FAMILIES.items():
        if stem in stems:
            return name
    return "other"


def op_seconds(logdir) -> collections.Counter:
    """Op type -> seconds of op time in the profile under ``logdir`` (executor threads of the host plane).

    Events are named ``scope/op_name:OpType``; the executor's own wrapper events are left out, since
    they enclose the ops and would count them twice."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = glob.glob(str(Path(logdir) / "**" / "*.xplane.pb"), recursive=True)
    if not files:
        raise FileNotFoundError(f"{logdir}: no *.xplane.pb written by the profiler")
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(files[0]).read_bytes())
    seconds = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and not name.startswith("ExecutorState"):
                    seconds[name.rsplit(":", 1)[1].strip()] += event.duration_ps * 1e-12
    return seconds


def profile_call(fn, steps: int, logdir) -> collections.Counter:
    """Op seconds per call of ``fn`` (already warmed up), averaged over ``steps`` profiled calls."""
    import tensorflow as tf

    tf.profiler.experimental.start(str(logdir))
    try:
        for _ in range(steps):
            fn()
    finally:
        tf.profiler.experimental.stop()
    return collections.Counter({op: s / steps for op, s in op_seconds(logdir).items()})


def by_family(seconds: collections.Counter) -> dict:
    out = collections.Counter()
    for op, s in seconds.items():
        out[family(op)] += s
    return dict(out)


def build(what: str, precision: str, quick: bool):
    import bench_gan
    import bench_unet

    if what == "gan":
        return bench_gan.build_iteration("scr_lung", precision, profile="cpu" if quick else "paper")[0]
    return bench_unet.build_step("scr_lung", precision, bench_unet.net_size("scr_lung", quick))[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--what", choices=("gan", "unet"), default="gan", help="WGAN-GP iteration or U-Net step")
    p.add_argument("--quick", action="store_true", help="cpu-profile networks instead of the paper's")
    p.add_argument("--steps", type=int, default=0, help="profiled calls per precision (default 2 full, 3 quick)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here (atomically)")
    args = p.parse_args(argv)
    steps = args.steps or (3 if args.quick else 2)
    if steps < 1:
        p.error(f"--steps {steps}: expected >= 1")
    from benchmarks import hardware

    fams = {}
    for prec in PRECISIONS:
        fn = build(args.what, prec, args.quick)
        fn()  # one more untimed call after the build's first: graphs optimised, allocator warm
        with tempfile.TemporaryDirectory() as logdir:
            fams[prec] = by_family(profile_call(fn, steps, logdir))
        total = sum(fams[prec].values())
        print(f"{args.what} {prec}: {total:.2f} op-s per step; "
              + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(fams[prec].items(), key=lambda kv: -kv[1])),
              flush=True)
    print(f"\n{'kernel family':22s} {'float32 op-s':>12s} {'bf16 op-s':>10s} {'f32/bf16':>9s}")
    for name in sorted(set(fams["float32"]) | set(fams["mixed_bfloat16"]), key=lambda k: -fams["float32"].get(k, 0)):
        a, b = fams["float32"].get(name, 0.0), fams["mixed_bfloat16"].get(name, 0.0)
        print(f"{name:22s} {a:12.3f} {b:10.3f} {('x%.2f' % (a / b)) if a and b else '-':>9s}")
    a, b = sum(fams["float32"].values()), sum(fams["mixed_bfloat16"].values())
    print(f"{'all ops':22s} {a:12.3f} {b:10.3f} {'x%.2f' % (a / b):>9s}")
    summary = {"benchmark": "profile_ops", "what": args.what, "quick": args.quick, "steps": steps,
               "device": hardware.describe_device(), "op_seconds_per_step_by_family": fams}
    hardware.emit_summary(summary, args.out, "profile_ops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
