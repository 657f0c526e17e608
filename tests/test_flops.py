"""Analytic FLOP counts (benchmarks/flops.py): hand counts, TF's own graph profiler, thesis Table 4.2."""
import doctest

import keras
import pytest
import tensorflow as tf

from benchmarks import flops
from gan_seg_aug.nets.networks import build_critic, build_generator, build_unet


def _toy():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(x)  # 4x4x4
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.Conv2DTranspose(2, 5, strides=2, padding="same", name="tconv")(y)  # 8x8x2
    y = keras.layers.Flatten(name="flat")(y)
    y = keras.layers.Dense(5, name="dense")(y)
    return keras.Model(x, y, name="toy")


def test_doctests():
    result = doctest.testmod(flops)
    assert result.attempted >= 2 and result.failed == 0


def test_hand_counted_layers():
    counts = {c.name: c.macs for c in flops.layer_counts(_toy())}
    # conv: 4*4 outputs x 3*3*3*4; tconv: 4*4 inputs x 5*5*4*2; dense: 128 x 5.  BN / Flatten: 0, left out.
    assert counts == {"conv": 16 * 108, "tconv": 16 * 200, "dense": 128 * 5}
    assert flops.forward_flops(_toy(), batch=3) == 2 * 3 * (1728 + 3200 + 640)
    assert flops.train_step_flops(_toy(), batch=3) == 3 * flops.forward_flops(_toy(), batch=3)


def test_dense_on_feature_maps_counts_every_position():
    x = keras.Input((6, 7, 3))
    m = keras.Model(x, keras.layers.Dense(4, name="d")(x))
    assert flops.layer_counts(m)[0].macs == 6 * 7 * 3 * 4


def test_nested_models_are_expanded():
    inner = _toy()
    x = keras.Input((8, 8, 3))
    outer = keras.Model(x, keras.layers.Dense(1, name="head")(inner(x)))
    names = [c.name for c in flops.layer_counts(outer)]
    assert names == ["toy/conv", "toy/tconv", "toy/dense", "head"]
    assert flops.forward_flops(outer) == flops.forward_flops(inner) + 2 * 5


def test_matches_tensorflow_graph_profiler():
    """An independent count: TF's graph profiler on the frozen forward graph of the same model."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    m = _toy()
    for layer in m.layers:  # the profiler counts bias adds; the analytic count leaves them out
        if hasattr(layer, "use_bias"):
            layer.use_bias = False
    m = keras.Model.from_config(m.get_config())
    concrete = tf.function(lambda v: m(v, training=False)).get_concrete_function(tf.TensorSpec([1, 8, 8, 3]))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=convert_variables_to_constants_v2(concrete).graph, options=opts)
    # op names look like "toy_1/conv_1/convolution": the layer's scope, uniquified by a suffix
    by_op = {c.name.split("/")[1].rsplit("_", 1)[0]: c.float_ops for c in info.children
             if c.name.split("/")[2] in ("convolution", "conv_transpose", "MatMul")}
    assert by_op["conv"] == 2 * 1728 and by_op["tconv"] == 2 * 3200 and by_op["dense"] == 2 * 640


def test_paper_scr_unet_matches_table_4_2():
    """Thesis Table 4.2 by hand: 3x3 convs, 64 kernels, 3 levels, 256x256x1 in, 2 logits out."""
    k, s = 64, 256
    macs = s * s * 9 * (1 * k + k * k)  # encoder stage 1
    macs += (s // 2) ** 2 * 9 * 2 * k * k + (s // 4) ** 2 * 9 * 2 * k * k  # encoder stages 2, 3
    macs += (s // 8) ** 2 * 9 * 2 * k * k  # encoded features
    for side in (s // 4, s // 2, s):  # decoder: concat (2k) -> k, then k -> k
        macs += side * side * 9 * (2 * k * k + k * k)
    macs += s * s * 9 * k * 2  # output logits
    assert flops.forward_flops(build_unet("scr_lung")) == 2 * macs
    # ~1.31 TFLOP per 16-pair training step: the figure benchmarks/README.md quotes
    assert flops.train_step_flops(build_unet("scr_lung"), 16) == 3 * 16 * 2 * macs


def test_scaled_gan_matches_table_4_1():
    """Table 4.1 at 32x32 with widths / 8 (the last three stages kept): generator z 128 -> 4x4x32 ->
    8x8x16 -> 16x16x8 -> 32x32x2; critic 32x32x2 -> 16x16x4 -> 8x8x8 -> 4x4x16 -> 1."""
    g = build_generator("scr_lung", height=32, width=32, width_div=8)
    d = build_critic("scr_lung", height=32, width=32, width_div=8)
    g_macs = 128 * 16 * 32 + 16 * 25 * 32 * 16 + 64 * 25 * 16 * 8 + 256 * 25 * 8 * 2
    d_macs = 256 * 25 * 2 * 4 + 64 * 25 * 4 * 8 + 16 * 25 * 8 * 16 + 256 * 1
    assert flops.forward_flops(g) == 2 * g_macs
    assert flops.forward_flops(d) == 2 * d_macs
    b = 16
    critic_step = 2 * b * (g_macs + 12 * d_macs)
    gen_step = 2 * b * (3 * g_macs + 2 * d_macs)
    assert flops.wgan_gp_iteration_flops(g, d, b) == 5 * critic_step + gen_step
    assert flops.wgan_gp_iteration_flops(g, d, b, n_critic=1) == critic_step + gen_step


def test_refusals():
    x = keras.Input((8, 8, 3))
    sep = keras.Model(x, keras.layers.SeparableConv2D(4, 3, name="sep")(x))
    with pytest.raises(ValueError, match="sep"):
        flops.layer_counts(sep)
    shared = keras.layers.Dense(3, name="shared")
    y = keras.Input((3,))
    with pytest.raises(ValueError, match="shared"):
        flops.layer_counts(keras.Model(y, shared(shared(y))))
    with pytest.raises(ValueError, match="n_critic"):
        flops.wgan_gp_iteration_flops(_toy(), _toy(), 1, n_critic=0)
    assert flops.gflops_per_second(2e9, 0.5) == 4.0
    assert "total forward" in flops.summary(_toy())


# ----------------------------------------------------------------------------- hardware.py (the peak the ratios use)
def test_measured_peak_and_timing_helpers():
    import numpy as np

    from benchmarks import hardware

    peak = hardware.measure_peak(quick=True, repeats=1)
    for key in ("matmul_float32_gflops", "conv_float32_gflops", "matmul_bfloat16_gflops", "conv_bfloat16_gflops"):
        assert peak[key] > 0.1, key
    assert peak["float32_gflops"] == max(peak["matmul_float32_gflops"], peak["conv_float32_gflops"])
    assert peak["bf16_speedup"] == pytest.approx(peak["bfloat16_gflops"] / peak["float32_gflops"])

    calls = []
    times = hardware.time_call(lambda: calls.append(1), repeats=3, warmup=2, sync=lambda r: r)
    assert len(times) == 3 and len(calls) == 5 and all(t >= 0 for t in times)
    with pytest.raises(ValueError, match="repeats"):
        hardware.time_call(lambda: None, repeats=0)

    before = hardware.peak_rss_mb()
    block = np.ones(60_000_000, np.float32)  # 229 MiB, touched
    assert hardware.peak_rss_mb() >= before + 150 or before > 4000  # (a high-water mark may already be above)
    del block

    info = hardware.describe_device()
    assert info["usable_cores"] >= 1 and info["tensorflow"] == tf.__version__
    assert hardware.format_device(info).startswith(info["cpu"])
    assert hardware.run_isolated(["-c", "import json; print(json.dumps({'ok': 1}))"]) == {"ok": 1}
    with pytest.raises(RuntimeError, match="exit 3"):
        hardware.run_isolated(["-c", "import sys; sys.exit(3)"])


def test_onednn_flag(monkeypatch):
    from benchmarks import hardware

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert hardware.onednn_enabled() is False
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert hardware.onednn_enabled() is True
