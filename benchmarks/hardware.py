"""What this machine can do: measured peak arithmetic rate, peak memory, a device description.

Utilisation figures (benchmarks/) are ratios to a peak *measured in the same process, in the same
run*: on a shared 2-core machine the available throughput changes from minute to minute, and a
datasheet peak would say nothing about what TensorFlow can reach here.  The peak is the best of a
few timed repetitions of a large float32 matmul, a large 3x3 convolution (the U-Net's op) and a
bfloat16 matmul and convolution, on TensorFlow's default device (the GPU when there is one).

Typical use in a benchmark::

    from benchmarks import hardware
    from benchmarks import flops
    peak = hardware.measure_peak()                      # {"matmul_float32_gflops": ..., ...}
    seconds = hardware.time_call(step, repeats=5)       # [s, s, ...] after a warm-up call
    rate = flops.gflops_per_second(flops.train_step_flops(unet, 16), min(seconds))
    print(rate / peak["float32_gflops"])
"""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time

# Sizes of the peak measurements: large enough that the kernels run at their best rate (work
# >> launch/threading overhead), small enough for ~1-2 s per measurement on 2 cores.
MATMUL_N = {"full": 2048, "quick": 1024}
CONV_SHAPE = {"full": (16, 128, 128, 64), "quick": (8, 64, 64, 64)}  # N, H, W, C; 3x3, C -> C
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def time_call(fn, *, repeats: int = 5, warmup: int = 1, sync=None) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls.

    ``sync(result)`` must block until the result is computed (default: ``.numpy()`` on whatever
    ``fn`` returns, element-wise through dicts/lists) -- TF may run asynchronously on a GPU.
    Report ``min`` for capability, ``median`` for what a user will see.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"time_call: repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    sync = sync or _block
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
    return times


def _block(result):
    if isinstance(result, dict):
        for v in result.values():
            _block(v)
    elif isinstance(result, (list, tuple)):
        for v in result:
            _block(v)
    elif hasattr(result, "numpy"):
        result.numpy()
    return result


def _best_rate(fn, flop: float, repeats: int) -> float:
    return flop / min(time_call(fn, repeats=repeats, warmup=1)) / 1e9


def measure_peak(quick: bool = False, repeats: int = 4) -> dict:
    """Measured peak GFLOP/s of TensorFlow on the default device, in this process, now.

    Returns ``matmul_float32_gflops``, ``conv_float32_gflops``, ``matmul_bfloat16_gflops``,
    ``conv_bfloat16_gflops``, plus ``float32_gflops`` / ``bfloat16_gflops`` = the larger of the two
    kernels of each dtype (the reference for utilisation ratios), ``bf16_speedup`` and the sizes
    used.  Takes a few seconds (``quick``: about a second).
    """
    import tensorflow as tf

    size = "quick" if quick else "full"
    n = MATMUL_N[size]
    b, h, w, c = CONV_SHAPE[size]
    out = {"peak_sizes": {"matmul_n": n, "conv_nhwc": [b, h, w, c], "conv_kernel": [3, 3, c, c]}}
    rng = tf.random.Generator.from_seed(0)
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(rng.normal((n, n)), dtype)
        m = tf.cast(rng.normal((n, n)), dtype)
        x = tf.cast(rng.normal((b, h, w, c)), dtype)
        k = tf.cast(rng.normal((3, 3, c, c)) * 0.05, dtype)
        matmul = tf.function(lambda: tf.matmul(a, m))
        conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
        out[f"matmul_{dtype.name}_gflops"] = _best_rate(matmul, 2.0 * n ** 3, repeats)
        out[f"conv_{dtype.name}_gflops"] = _best_rate(conv, 2.0 * b * h * w * 9 * c * c, repeats)
    for name in ("float32", "bfloat16"):
        out[f"{name}_gflops"] = max(out[f"matmul_{name}_gflops"], out[f"conv_{name}_gflops"])
    out["bf16_speedup"] = out["bfloat16_gflops"] / out["float32_gflops"]
    return out


def emit_summary(summary: dict, out, benchmark: str) -> None:
    """A benchmark's ending: ``summary`` written atomically to ``out`` (if given) with provenance,
    then printed as the ONE JSON line the benchmark's output ends with."""
    if out:
        from gan_seg_aug.artifacts import atomic_write_json, provenance

        atomic_write_json(out, {**summary, "provenance": provenance(benchmark=benchmark)})
    print(json.dumps(summary), flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage``; KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def onednn_enabled() -> bool:
    """Whether TensorFlow's oneDNN CPU kernels are on: ``TF_ENABLE_ONEDNN_OPTS`` unset means on for
    Linux x86 builds since TF 2.9 (the bf16 CPU kernels need it)."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is None:
        return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
    return value.strip().lower() in ("1", "true", "yes", "on")


def _cpu_info() -> tuple[str, set]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if key == "" and flags:  # end of the first processor block
                    break
    except OSError:
        pass
    return model, flags


def describe_device() -> dict:
    """Where the numbers were measured: CPU model and relevant flags, usable cores, load, memory,
    GPUs, TF/Keras versions and whether oneDNN is on.  JSON-ready."""
    import keras
    import tensorflow as tf

    model, flags = _cpu_info()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    info = {
        "cpu": model,
        "cpu_flags": sorted(f for f in CPU_FLAGS_OF_INTEREST if f in flags),
        "usable_cores": cores,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "gpus": [],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": onednn_enabled(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0 = all cores
    }
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        info["gpus"].append({"name": details.get("device_name", gpu.name),
                             "compute_capability": details.get("compute_capability")})
    return info


def format_device(info: dict) -> str:
    """One line for logs, e.g. ``AMD EPYC | 2 cores | load 5.1 | avx512_bf16 | oneDNN on | TF 2.21``."""
    parts = [info["cpu"], f"{info['usable_cores']} cores", f"load {info['load_average_1m']}",
             ",".join(info["cpu_flags"]) or "no AVX", f"oneDNN {'on' if info['onednn'] else 'off'}",
             f"TF {info['tensorflow']}"]
    parts += [f"GPU {g['name']}" for g in info["gpus"]]
    return " | ".join(str(p) for p in parts)


def run_isolated(argv: list, *, timeout: float = 7200, env: dict | None = None) -> dict:
    """Run ``python *argv`` in a fresh process and return the JSON object printed on its last
    stdout line.  Benchmarks measure each variant this way so that its peak memory is its own and
    one variant's thread pools, caches and XLA compilations do not affect the next one."""
    import json
    import subprocess

    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), **(env or {})}
    proc = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
