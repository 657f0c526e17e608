"""The six networks against thesis Tables 4.1-4.4, their scaled builds and the layer-table command.

Full-size models are only built (once per module) and run forward on batch 1 where that is cheap;
behaviour (norm variants, mixed precision) is tested on tiny builds.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from gan_seg_aug.nets import layer_table
from gan_seg_aug.config import PROFILE_TABLE, task_spec
from gan_seg_aug.nets.networks import build_critic, build_generator, build_unet

# --- Thesis tables, transcribed as printed: (column, kernels, kernel size, stride, output W x H x C).
# The thesis writes W x H x C; `_hwc` turns that into Keras' H x W x C.
TABLE_4_1A = [("projection", None, None, None, (4, 4, 2048)),
              ("stage1", 1024, 5, 2, (8, 8, 1024)), ("stage2", 512, 5, 2, (16, 16, 512)),
              ("stage3", 256, 5, 2, (32, 32, 256)), ("stage4", 128, 5, 2, (64, 64, 128)),
              ("stage5", 64, 5, 2, (128, 128, 64)), ("stage6", 2, 5, 2, (256, 256, 2))]
TABLE_4_1B = [("stage1", 32, 5, 2, (128, 128, 32)), ("stage2", 64, 5, 2, (64, 64, 64)),
              ("stage3", 128, 5, 2, (32, 32, 128)), ("stage4", 256, 5, 2, (16, 16, 256)),
              ("stage5", 512, 5, 2, (8, 8, 512)), ("stage6", 1024, 5, 2, (4, 4, 1024)),
              ("output", 1, None, None, (1,))]
# Table 4.3a prints stage 2's *input* as [8x16x512]; stage 1's output [16x8x512] is the consistent value.
TABLE_4_3A = [("projection", None, None, None, (8, 4, 1024)),
              ("stage1", 512, 5, 2, (16, 8, 512)), ("stage2", 256, 5, 2, (32, 16, 256)),
              ("stage3", 128, 5, 2, (64, 32, 128)), ("stage4", 64, 5, 2, (128, 64, 64)),
              ("stage5", 4, 5, 2, (256, 128, 4))]
TABLE_4_3B = [("stage1", 32, 5, 2, (128, 64, 32)), ("stage2", 64, 5, 2, (64, 32, 64)),
              ("stage3", 128, 5, 2, (32, 16, 128)), ("stage4", 256, 5, 2, (16, 8, 256)),
              ("stage5", 512, 5, 2, (8, 4, 512)), ("output", 1, None, None, (1,))]
# U-Net tables: (layer whose output the column reports, W x H x C); kernels 64 / 256, 3x3, stride 1.
TABLE_4_2 = [("unet_enc1_pool", (128, 128, 64)), ("unet_enc2_pool", (64, 64, 64)),
             ("unet_enc3_pool", (32, 32, 64)), ("unet_features_conv2", (32, 32, 64)),
             ("unet_dec1_conv2", (64, 64, 64)), ("unet_dec2_conv2", (128, 128, 64)),
             ("unet_dec3_conv2", (256, 256, 64)), ("unet_output_conv", (256, 256, 2))]
# Table 4.4 as printed, i.e. for its stated [256x256x3] input.
TABLE_4_4 = [("unet_enc2_pool", (64, 64, 256)), ("unet_enc4_pool", (16, 16, 256)),
             ("unet_features_conv2", (16, 16, 256)), ("unet_dec2_conv2", (64, 64, 256)),
             ("unet_dec4_conv2", (256, 256, 256)), ("unet_output_conv", (256, 256, 8))]


def _hwc(whc):
    return (whc[1], whc[0], whc[2]) if len(whc) == 3 else whc


@pytest.fixture(scope="module")
def full():
    """Paper-size networks, each built once for the module."""
    cache = {}
    builders = {"generator": build_generator, "critic": build_critic, "unet": build_unet}

    def get(task, net):
        if (task, net) not in cache:
            keras.utils.set_random_seed(0)
            cache[task, net] = builders[net](task)
        return cache[task, net]
    return get


def _layer_names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("task,table,n_in", [("scr_lung", TABLE_4_1A, 128), ("cityscapes", TABLE_4_3A, 128)])
def test_generator_matches_table(full, task, table, n_in):
    g = full(task, "generator")
    assert g.input_shape == (None, n_in)
    expected_params = 0
    c_in = table[0][4][2]
    proj = g.get_layer("gen_projection_reshape")
    assert tuple(proj.output.shape[1:]) == _hwc(table[0][4])
    expected_params += n_in * math.prod(table[0][4]) + 4 * c_in  # dense without bias + BN
    last = table[-1][0]
    for column, kernels, k, s, out in table[1:]:
        conv = g.get_layer(f"gen_{column}_tconv")
        assert isinstance(conv, keras.layers.Conv2DTranspose)
        assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (kernels, (k, k), (s, s), "same")
        assert tuple(conv.output.shape[1:]) == _hwc(out)
        has_bn = f"gen_{column}_bn" in _layer_names(g)
        assert has_bn == (column != last)  # "Batch Normalization: yes ... no" row
        expected_params += k * k * c_in * kernels + (4 * kernels if has_bn else kernels)
        c_in = kernels
    tconvs = [layer.name for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert tconvs == [f"gen_{row[0]}_tconv" for row in table[1:]]
    assert g.layers[-1].name == "gen_output_tanh" and g.output_shape[1:] == _hwc(table[-1][4])
    assert g.count_params() == expected_params


@pytest.mark.parametrize("task,table", [("scr_lung", TABLE_4_1B), ("cityscapes", TABLE_4_3B)])
def test_critic_matches_table(full, task, table):
    d = full(task, "critic")
    spec = task_spec(task)
    assert d.input_shape == (None, spec.height, spec.width, spec.pair_channels)
    c_in, expected_params = spec.pair_channels, 0
    for column, kernels, k, s, out in table[:-1]:
        conv = d.get_layer(f"critic_{column}_conv")
        assert isinstance(conv, keras.layers.Conv2D)
        assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (kernels, (k, k), (s, s), "same")
        assert tuple(conv.output.shape[1:]) == _hwc(out)
        assert isinstance(d.get_layer(f"critic_{column}_bn"), keras.layers.BatchNormalization)
        assert isinstance(d.get_layer(f"critic_{column}_relu"), keras.layers.ReLU)  # tables: ReLU, not leaky
        expected_params += k * k * c_in * kernels + 4 * kernels
        c_in = kernels
    dense = d.get_layer("critic_output_dense")
    assert dense.units == 1 and dense.activation.__name__ == "linear"
    expected_params += math.prod(_hwc(table[-2][4])) + 1
    assert d.count_params() == expected_params
    assert len([lay for lay in d.layers if isinstance(lay, keras.layers.Conv2D)]) == len(table) - 1


def _check_unet(u, table, kernels, levels, n_classes):
    convs = [layer for layer in u.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 4 * levels + 2 + 1  # two per encoder / decoder stage, two encoded, one output
    for conv in convs:
        assert (conv.kernel_size, conv.strides, conv.padding) == ((3, 3), (1, 1), "same")
        if conv.name == "unet_output_conv":
            assert conv.filters == n_classes and conv.activation.__name__ == "linear"  # logits
        else:
            assert conv.filters == kernels and conv.activation.__name__ == "relu"
    ups = [layer for layer in u.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(ups) == levels and all(up.size == (2, 2) and up.interpolation == "bilinear" for up in ups)
    pools = [layer for layer in u.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    assert len(pools) == levels and all(p.pool_size == (2, 2) and p.strides == (2, 2) for p in pools)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in u.layers)
    for name, out in table:
        assert tuple(u.get_layer(name).output.shape[1:]) == _hwc(out), name
    for stage in range(1, levels + 1):  # decoder stage j concatenates encoder stage levels + 1 - j
        concat = u.get_layer(f"unet_dec{stage}_concat")
        skip = u.get_layer(f"unet_enc{levels + 1 - stage}_conv2")
        assert any(t is skip.output for t in concat.input)


def test_scr_unet_matches_table_4_2(full):
    u = full("scr_lung", "unet")
    assert u.input_shape == (None, 256, 256, 1)
    _check_unet(u, TABLE_4_2, kernels=64, levels=3, n_classes=2)
    # Hand count: 7 convs 64->64 (36,928 each), first conv 640, 3 decoder convs 128->64 (73,792), output 1,154.
    assert u.count_params() == 640 + 7 * 36_928 + 3 * (73_792 + 36_928) + 1_154 == 592_450


def test_cityscapes_unet_matches_table_4_4():
    keras.utils.set_random_seed(0)
    literal = build_unet("cityscapes", height=256, width=256)  # the table's stated 256x256 input
    _check_unet(literal, TABLE_4_4, kernels=256, levels=4, n_classes=8)
    real = build_unet("cityscapes")  # the data: 256 x 128 (W x H), as in §5.2.2
    assert real.input_shape == (None, 128, 256, 3) and real.output_shape == (None, 128, 256, 8)
    assert real.get_layer("unet_features_conv2").output.shape[1:] == (8, 16, 256)
    assert real.count_params() == literal.count_params()


def _fan_in(layer):
    shape = layer.kernel.shape
    if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel (k, k, out, in); stride 2
        return shape[0] * shape[1] * shape[3] / (layer.strides[0] * layer.strides[1])
    return math.prod(shape[:-1])


@pytest.mark.parametrize("task", ["scr_lung", "cityscapes"])
@pytest.mark.parametrize("net", ["generator", "critic", "unet"])
def test_he_initialisation(full, task, net):
    """Thesis eq. 2.30: w ~ sqrt(2 / n_in) N(0, 1) for every kernel; biases 0."""
    kernels = [layer for layer in full(task, net).layers if hasattr(layer, "kernel")]
    assert kernels
    for layer in kernels:
        init = layer.kernel_initializer
        assert isinstance(init, keras.initializers.VarianceScaling) and init.distribution == "untruncated_normal"
        w = np.asarray(layer.kernel)
        expected = math.sqrt(2.0 / _fan_in(layer))
        tolerance = 0.05 if w.size >= 10_000 else 0.2
        assert abs(w.std() / expected - 1) < tolerance, (layer.name, w.std(), expected)
        assert abs(w.mean()) < 4 * expected / math.sqrt(w.size)
        if layer.use_bias:
            assert not np.any(np.asarray(layer.bias))


@pytest.mark.parametrize("task", ["scr_lung", "cityscapes"])
def test_full_size_forward_batch_one(full, task):
    spec = task_spec(task)
    z = 5.0 * np.random.default_rng(0).standard_normal((1, 128)).astype("float32")  # push tanh into saturation
    pair = np.asarray(full(task, "generator")(z, training=False))
    assert pair.shape == (1, spec.height, spec.width, spec.pair_channels) and pair.dtype == np.float32
    assert np.all(np.isfinite(pair)) and pair.min() >= -1.0 and pair.max() <= 1.0 and pair.std() > 0
    score = np.asarray(full(task, "critic")(pair, training=False))
    assert score.shape == (1, 1) and score.dtype == np.float32 and np.isfinite(score).all()


def test_scr_unet_forward_gives_unclipped_logits(full):
    image = np.random.default_rng(1).uniform(-1, 1, (1, 256, 256, 1)).astype("float32")
    logits = np.asarray(full("scr_lung", "unet")(image))
    assert logits.shape == (1, 256, 256, 2) and logits.dtype == np.float32
    assert logits.min() < 0 < logits.max()  # no ReLU on the output (Table 4.2 lists one; we drop it)


def _small_critic(norm):
    keras.utils.set_random_seed(0)
    return build_critic("scr_lung", height=32, width=32, width_div=8, norm=norm)


def test_critic_norm_variants_layers():
    batch, layer, none = (_small_critic(n) for n in ("batch", "layer", "none"))
    convs = ["critic_stage1_conv", "critic_stage2_conv", "critic_stage3_conv"]
    assert [n for n in _layer_names(batch) if n.endswith("_bn")] == [c.replace("conv", "bn") for c in convs]
    assert [batch.get_layer(c).use_bias for c in convs] == [False, False, False]
    lns = [lay for lay in layer.layers if isinstance(lay, keras.layers.GroupNormalization)]
    assert [lay.name for lay in lns] == ["critic_stage2_ln", "critic_stage3_ln"]  # none after the first conv
    assert all(lay.groups == 1 and lay.epsilon == 1e-5 and lay.center and lay.scale for lay in lns)
    assert [layer.get_layer(c).use_bias for c in convs] == [True, False, False]
    for model in (layer, none):
        assert not any(isinstance(lay, keras.layers.BatchNormalization) for lay in model.layers)
    assert not any(isinstance(lay, keras.layers.GroupNormalization) for lay in none.layers)
    assert all(none.get_layer(c).use_bias for c in convs)
    with pytest.raises(ValueError, match="unknown critic norm 'instance'"):
        build_critic("scr_lung", height=32, width=32, norm="instance")


@pytest.mark.parametrize("norm,independent", [("layer", True), ("none", True), ("batch", False)])
def test_critic_per_sample_independence(norm, independent):
    """The gradient penalty treats D(x_i) as a function of x_i alone; only BN breaks that."""
    critic = _small_critic(norm)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (3, 32, 32, 2)).astype("float32")
    y = x.copy()
    y[1] = rng.uniform(-1, 1, (32, 32, 2))
    a, b = np.asarray(critic(x, training=True)), np.asarray(critic(y, training=True))
    assert not np.allclose(a[1], b[1])
    assert np.allclose(a[0], b[0], atol=1e-6) == independent


@pytest.mark.parametrize("profile", [p for p in sorted(PROFILE_TABLE) if p != "paper"])  # paper: tests above
@pytest.mark.parametrize("task", ["scr_lung", "cityscapes"])
def test_profile_scales_build(profile, task):
    s = PROFILE_TABLE[profile].scale[task]
    spec = task_spec(task)
    g = build_generator(task, height=s.height, width=s.width, width_div=s.gan_width_div)
    d = build_critic(task, height=s.height, width=s.width, width_div=s.gan_width_div)
    u = build_unet(task, height=s.height, width=s.width, width_div=s.unet_width_div)
    n = int(math.log2(s.height // 4))
    full_gen = (TABLE_4_1A if task == "scr_lung" else TABLE_4_3A)
    full_critic = (TABLE_4_1B if task == "scr_lung" else TABLE_4_3B)[:-1]
    tconvs = [lay for lay in g.layers if isinstance(lay, keras.layers.Conv2DTranspose)]
    # generator keeps the table's last n stages (narrowed, output channels kept), numbered as in the table
    assert [t.name for t in tconvs] == [f"gen_{row[0]}_tconv" for row in full_gen[-n:]]
    assert [t.filters for t in tconvs] == [max(1, r[1] // s.gan_width_div) for r in full_gen[-n:-1]] + [
        spec.pair_channels]
    first_width = full_gen[-n - 1][4][2]
    assert g.get_layer("gen_projection_reshape").output.shape[1:] == _hwc(full_gen[0][4])[:2] + (
        max(1, first_width // s.gan_width_div),)
    assert g.output_shape == (None, s.height, s.width, spec.pair_channels)
    # critic keeps its first n stages and still ends at 4x4 (SCR) / 4x8 (Cityscapes)
    convs = [lay for lay in d.layers if isinstance(lay, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [max(1, r[1] // s.gan_width_div) for r in full_critic[:n]]
    assert tuple(convs[-1].output.shape[1:3]) == _hwc(full_critic[-1][4])[:2]
    assert d.output_shape == (None, 1)
    assert u.output_shape == (None, s.height, s.width, spec.n_classes)
    assert u.get_layer("unet_enc1_conv1").filters == max(1, (64 if task == "scr_lung" else 256) // s.unet_width_div)


def test_cpu_profile_scr_widths_spelled_out():
    g = build_generator("scr_lung", height=128, width=128, width_div=4)
    assert [lay.filters for lay in g.layers if isinstance(lay, keras.layers.Conv2DTranspose)] == [128, 64, 32, 16, 2]
    assert g.get_layer("gen_projection_reshape").output.shape[1:] == (4, 4, 256)
    d = build_critic("scr_lung", height=128, width=128, width_div=4)
    assert [lay.filters for lay in d.layers if isinstance(lay, keras.layers.Conv2D)] == [8, 16, 32, 64, 128]


@pytest.mark.parametrize("builder,kwargs,message", [
    (build_generator, dict(task="scr_lung", height=100, width=100), "height = 4 \\* 2\\^n between 8 and 256"),
    (build_generator, dict(task="scr_lung", height=128, width=64), "width == height"),
    (build_generator, dict(task="scr_lung", height=512, width=512), "between 8 and 256"),
    (build_generator, dict(task="cityscapes", height=64, width=64), "width == 2 \\* height"),
    (build_critic, dict(task="cityscapes", height=256, width=512), "between 8 and 128"),
    (build_critic, dict(task="scr_lung", height=4, width=4), "not a supported size"),
    (build_unet, dict(task="cityscapes", height=100, width=256), "multiples of 2\\^4 = 16"),
    (build_unet, dict(task="scr_lung", height=0, width=64), "height must be a positive whole number"),
    (build_unet, dict(task="scr_lung", width_div=0), "width_div must be a positive whole number"),
    (build_generator, dict(task="scr_lung", height=32.0, width=32), "height must be a positive whole number"),
    (build_unet, dict(task="brats"), "unknown task 'brats'"),
])
def test_bad_sizes_give_clear_errors(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_odd_unet_sizes_allowed_when_divisible():
    u = build_unet("scr_lung", height=24, width=40, width_div=16)
    assert u.output_shape == (None, 24, 40, 2)


def test_generator_output_range_training_mode():
    g = build_generator("cityscapes", height=16, width=32, width_div=16, latent_dim=8)
    out = np.asarray(g(10.0 * np.random.default_rng(3).standard_normal((4, 8)).astype("float32"), training=True))
    assert out.shape == (4, 16, 32, 4) and out.min() >= -1 and out.max() <= 1 and np.abs(out).max() > 0.5


def test_mixed_precision_outputs_are_float32():
    policy = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        g = build_generator("scr_lung", height=16, width=16, width_div=64)
        d = build_critic("scr_lung", height=16, width=16, width_div=16, norm="layer")
        u = build_unet("scr_lung", height=16, width=16, width_div=16)
        assert g.get_layer("gen_stage5_tconv").compute_dtype == "bfloat16"  # the policy took effect
        z = np.zeros((2, 128), "float32")
        pair = g(z, training=True)
        assert pair.dtype == "float32"
        assert d(pair).dtype == "float32"
        assert u(np.zeros((2, 16, 16, 1), "float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(policy)


def test_layer_table_command(capsys):
    assert layer_table.main(["--task", "cityscapes", "--net", "all", "--profile", "smoke"]) == 0
    text = capsys.readouterr().out
    nets = dict(layer_table.build_nets("cityscapes", "smoke"))
    for model in nets.values():
        for layer in model.layers[1:]:
            assert layer.name in text
        assert f"total params: {model.count_params():,}" in text
    assert text.count("thesis tables write W x H x C") == 3
    # the generator's output row: H x W x C and the thesis' W x H x C
    row = next(line for line in text.splitlines() if line.startswith("gen_stage5_tconv"))
    assert row.split()[1:6] == ["Conv2DTranspose", "5x5", "2x2", "32x64x4", "64x32x4"]
    with pytest.raises(SystemExit) as exc:
        layer_table.main(["--task", "cityscapes", "--net", "discriminator"])
    assert exc.value.code == 2
