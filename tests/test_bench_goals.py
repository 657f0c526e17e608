"""The goal table of benchmarks/bench_goals.py, on constructed round timings (no timing here)."""
import doctest

import pytest

from benchmarks import bench_goals


class _Rate(float):
    """What ``bench_augment.bench_pipeline`` returns: minibatches per CPU second, with ``.wall``."""

    def __new__(cls, per_cpu_s, wall):
        rate = super().__new__(cls, per_cpu_s)
        rate.wall = wall
        return rate


def _measured(gan32, gan16, unet32, unet16, peaks):
    times = {"gan_float32": gan32, "gan_mixed_bfloat16": gan16, "unet_float32": unet32, "unet_mixed_bfloat16": unet16}
    return {"times_s": times, "cpu_s": {k: [2 * t for t in v] for k, v in times.items()}, "peaks": peaks,
            "extra": [_Rate(1.0, 2.0)] * len(peaks)}


def test_doctests():
    result = doctest.testmod(bench_goals)
    assert result.attempted >= 1 and result.failed == 0


def test_bf16_goal_is_relative_to_the_rounds_own_peak_ratio():
    peaks = [{"float32_gflops": 100.0, "bfloat16_gflops": 200.0}, {"float32_gflops": 100.0, "bfloat16_gflops": 150.0}]
    # GAN: x1.8 in both rounds -> 90 % and 120 % of the peak ratio; U-Net: x1.5 -> 75 % and 100 %
    measured = _measured([1.8, 1.8], [1.0, 1.0], [1.5, 1.5], [1.0, 1.0], peaks)
    gan = {"float32": {"fraction_of_float32_peak": 0.71}, "mixed_bfloat16": {"speedup_vs_float32": 1.8}}
    unet = {"mixed_bfloat16": {"speedup_vs_float32": 1.5}}
    rows = {r["goal"]: r for r in bench_goals.goal_rows(gan, unet, measured, quick=False)}
    g = rows["bf16 speed-up / machine's bf16:f32 peak, WGAN-GP iteration"]
    u = rows["bf16 speed-up / machine's bf16:f32 peak, U-Net step"]
    assert g["value"] == pytest.approx(1.05) and g["met"] is True
    assert u["value"] == pytest.approx(0.875) and u["met"] is False
    assert rows["bf16 / float32 throughput, WGAN-GP iteration"]["met"] is False  # issue 7's fixed 2x
    assert rows["WGAN-GP iteration, % of float32 peak (float32)"]["met"] is True
