"""The six networks of the thesis: pair generator, critic and U-Net for SCR Lung and Cityscapes.

Built exactly per thesis §4.2.1 / §4.2.2, Tables 4.1 (SCR GAN), 4.2 (SCR U-Net), 4.3 (Cityscapes
GAN) and 4.4 (Cityscapes U-Net), and paper §IV: "All network weights were initialized using the
*He* initializer. We use ReLU activations in all layers, except for the final generator layers,
which use tanh activations. In contrast to our GANs, we do not use Batch Normalization in our
segmentation networks."  Choices where the tables are ambiguous are argued in
docs/decisions.md §2; the short version:

* every conv / dense kernel: He normal, ``w ~ sqrt(2 / n_in) N(0, 1)`` (thesis eq. 2.30, not
  truncated); for a transposed conv ``n_in`` is the number of inputs of one output pixel,
  ``k^2 C_in / s^2``.  Biases start at 0 (thesis §2.3.6) and are left out where a normalisation
  with an offset follows (it would cancel them).
* 5x5 stride-2 (transposed) convs with ``padding="same"`` -- the only padding that gives the
  tables' output sizes (their "Padding 1" for the generator cannot).
* the critic uses ReLU, as Tables 4.1b / 4.3b say (not DCGAN's leaky ReLU); its normalisation is
  ``norm="batch"`` (the tables), ``"layer"`` (WGAN-GP's recommendation) or ``"none"``.
* U-Net "Upsampling" is bilinear x2, the output conv has no activation (logits; the loss applies
  the softmax), the Cityscapes U-Net takes the real 128x256 (HxW) images.

Shapes here are H x W x C; the thesis tables write W x H x C.  Layer names carry the thesis
column ("gen_stage3_tconv" is "Generator Stage 3"), and a scaled generator keeps the table's
stage numbers of the stages it keeps.  Final layers run in float32 so that a global
``mixed_bfloat16`` policy keeps outputs (and hence the losses) in float32.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from gan_seg_aug.config import CRITIC_NORMS, task_spec

GAN_KERNEL, UNET_KERNEL = 5, 3  # Tables 4.1/4.3: kernel size 5, stride 2; Tables 4.2/4.4: 3, stride 1
# The tables below are keyed by architecture family: a paper task's name.  Any other task (own data)
# names the family whose networks it uses (TaskSpec.family): square pairs SCR's, 1:2 pairs Cityscapes'.
GAN_START = {"scr_lung": (4, 4), "cityscapes": (4, 8)}  # (H, W) after the projection / at the critic end
# Table column "Number of Kernels" of the hidden generator stages, and the projection width.
GEN_KERNELS = {"scr_lung": (1024, 512, 256, 128, 64), "cityscapes": (512, 256, 128, 64)}
GEN_PROJECTION = {"scr_lung": 2048, "cityscapes": 1024}
CRITIC_KERNELS = {"scr_lung": (32, 64, 128, 256, 512, 1024), "cityscapes": (32, 64, 128, 256, 512)}
UNET_LEVELS = {"scr_lung": 3, "cityscapes": 4}  # §4.2.1 "depth of 3"; §4.2.2 "depth ... to 4"
UNET_KERNELS = {"scr_lung": 64, "cityscapes": 256}
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
LN_EPSILON = 1e-5


def he_normal(n_in: int, keras_fan_in: int | None = None) -> keras.initializers.VarianceScaling:
    """He initialiser (thesis eq. 2.30): ``w ~ sqrt(2 / n_in) N(0, 1)``.

    Keras divides the scale by its own fan-in (``keras_fan_in``; for transposed convs that is
    ``k^2 C_out``, not the number of inputs of a neuron), so the scale is rescaled to hit
    ``2 / n_in`` exactly.
    """
    scale = 2.0 * (keras_fan_in or n_in) / n_in
    return keras.initializers.VarianceScaling(scale=scale, mode="fan_in", distribution="untruncated_normal")


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive whole number, got {value!r}")
    return value


def _narrow(kernels: int, width_div: int) -> int:
    """Hidden kernel counts are divided by ``width_div`` (profiles); never below one kernel."""
    return max(1, kernels // width_div)


def _table(task) -> tuple[str, str]:
    """Thesis table numbers of the task's GAN / U-Net (for error messages)."""
    return ("4.1", "4.2") if task_spec(task).family == "scr_lung" else ("4.3", "4.4")


def _size(task, height, width) -> tuple[int, int]:
    spec = task_spec(task)
    h = spec.height if height is None else _positive_int(height, "height")
    w = spec.width if width is None else _positive_int(width, "width")
    return h, w


def _gan_stages(task, height, width, net: str) -> tuple[int, int, int]:
    """(H, W, number of stride-2 stages).  SCR starts at 4x4, Cityscapes at 4x8 (H x W)."""
    h, w = _size(task, height, width)
    family = task_spec(task).family
    h0, w0 = GAN_START[family]
    max_stages = len(CRITIC_KERNELS[family])
    max_h = h0 * 2 ** max_stages
    n = int(round(math.log2(h / h0))) if h >= h0 else -1
    if w * h0 != h * w0 or n < 1 or h != h0 * 2 ** n or n > max_stages:
        shape = "width == height" if h0 == w0 else "width == 2 * height"
        raise ValueError(
            f"{net} for {task_spec(task).name}: height={h}, width={w} is not a supported size: expected {shape} and "
            f"height = {h0} * 2^n between {2 * h0} and {max_h} (thesis Table "
            f"{_table(task)[0]}: each stride-2 stage doubles / halves the side)")
    return h, w, n


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


@keras.saving.register_keras_serializable(package="gan_seg_aug")
class RowStatsBatchNorm(layers.Layer):
    """Batch normalisation whose training-mode statistics come from the first ``stat_rows`` rows of the
    batch only, and are applied to every row (critic norm ``batch-realfake``, docs/decisions.md §3).

    The WGAN-GP step calls the critic once on ``[real; fake; x̂]`` with ``stat_rows = 2B``: real and fake
    are normalised by their joint statistics, and x̂ by the same ones, so the penalty constrains the very
    function that scores real and fake.  ``stat_rows`` is a Python attribute read when the call is traced
    (:func:`batch_stats_from`); ``None`` = all rows, i.e. plain BN.  Inference mode uses moving averages.

    >>> import numpy as np
    >>> bn = RowStatsBatchNorm(epsilon=0.0)
    >>> x = np.array([[1.0], [3.0], [100.0]], np.float32)   # stats of the first two rows: mean 2, std 1
    >>> with batch_stats_from(keras.Sequential([bn]), 2):
    ...     y = bn(x, training=True)
    >>> np.round(np.asarray(y)[:, 0], 4).tolist()
    [-1.0, 1.0, 98.0]
    """

    def __init__(self, momentum: float = BN_MOMENTUM, epsilon: float = BN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.stat_rows = None

    def build(self, input_shape):
        c = (int(input_shape[-1]),)
        self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=c, initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=c, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=c, initializer="ones", trainable=False)

    def call(self, x, training=False):
        ops = keras.ops
        dtype = x.dtype
        x32 = ops.cast(x, "float32")
        if training:
            ref = x32 if self.stat_rows is None else x32[: self.stat_rows]
            axes = list(range(len(x.shape) - 1))
            mean, var = ops.mean(ref, axis=axes), ops.var(ref, axis=axes)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * ops.stop_gradient(mean))
            self.moving_variance.assign(m * self.moving_variance + (1 - m) * ops.stop_gradient(var))
        else:
            mean, var = self.moving_mean, self.moving_variance
        y = (x32 - mean) * ops.rsqrt(var + self.epsilon) * self.gamma + self.beta
        return ops.cast(y, dtype)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


class batch_stats_from:
    """Context manager: every :class:`RowStatsBatchNorm` of ``model`` takes its statistics from the first
    ``rows`` rows while the block runs (read at trace time, so use it around the traced call)."""

    def __init__(self, model, rows):
        self.layers = [l for l in model.layers if isinstance(l, RowStatsBatchNorm)]
        self.rows = rows

    def __enter__(self):
        for layer in self.layers:
            layer.stat_rows = self.rows
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            layer.stat_rows = None


def build_generator(task, *, height: int | None = None, width: int | None = None,
                    width_div: int = 1, latent_dim: int = 128) -> keras.Model:
    """Pair generator, thesis Table 4.1a (SCR) / 4.3a (Cityscapes).

    ``z in R^128 ~ N(0, 1)`` -> fully connected projection to 4x4x2048 (SCR) / 4x8x1024
    (Cityscapes, H x W), BN, ReLU -> 5x5 stride-2 fractionally strided convs (BN, ReLU) -> a last
    5x5 stride-2 transposed conv to image channels + 1 mask channel, tanh (no BN).

    A smaller ``height`` drops the *first* (widest) stages: the output side ``S`` needs
    ``log2(S / 4)`` stages and the kept ones are the table's last stages; the projection is
    twice as wide as the first kept stage (as in the tables).
    """
    spec = task_spec(task)
    width_div = _positive_int(width_div, "width_div")
    latent_dim = _positive_int(latent_dim, "latent_dim")
    h, w, n = _gan_stages(task, height, width, "generator")
    table = GEN_KERNELS[spec.family]
    last_stage = len(table) + 1  # the tanh output stage's number in the table
    first_stage = last_stage - n + 1
    kept = [_narrow(c, width_div) for c in table[len(table) - (n - 1):]]
    stage_inputs = (GEN_PROJECTION[spec.family],) + table  # input width of each table stage
    proj = _narrow(stage_inputs[len(stage_inputs) - n], width_div)
    h0, w0 = GAN_START[spec.family]

    z = keras.Input((latent_dim,), name="z")
    # No bias before BN: BN's offset would cancel it (DCGAN / tflib practice).
    x = layers.Dense(h0 * w0 * proj, use_bias=False, kernel_initializer=he_normal(latent_dim),
                     name="gen_projection_dense")(z)
    x = layers.Reshape((h0, w0, proj), name="gen_projection_reshape")(x)
    x = _bn("gen_projection_bn")(x)
    x = layers.ReLU(name="gen_projection_relu")(x)
    c_in = proj
    for stage, c in enumerate(kept, start=first_stage):
        x = _tconv(c, c_in, f"gen_stage{stage}_tconv", use_bias=False)(x)
        x = _bn(f"gen_stage{stage}_bn")(x)
        x = layers.ReLU(name=f"gen_stage{stage}_relu")(x)
        c_in = c
    x = _tconv(spec.pair_channels, c_in, f"gen_stage{last_stage}_tconv", use_bias=True, dtype="float32")(x)
    out = layers.Activation("tanh", dtype="float32", name="gen_output_tanh")(x)
    return keras.Model(z, out, name=f"generator_{spec.name}")


def _tconv(filters: int, c_in: int, name: str, *, use_bias: bool, dtype=None) -> layers.Conv2DTranspose:
    n_in = GAN_KERNEL ** 2 * c_in // 4  # stride 2: each output pixel sees k^2/s^2 input positions
    return layers.Conv2DTranspose(
        filters, GAN_KERNEL, strides=2, padding="same", use_bias=use_bias,
        kernel_initializer=he_normal(n_in, keras_fan_in=GAN_KERNEL ** 2 * filters), name=name,
        dtype=dtype)


def build_critic(task, *, height: int | None = None, width: int | None = None,
                 width_div: int = 1, norm: str = "batch") -> keras.Model:
    """Critic ("discriminator"), thesis Table 4.1b (SCR) / 4.3b (Cityscapes).

    image+mask pair -> 5x5 stride-2 convs (32, 64, ... kernels; normalisation; ReLU) down to
    4x4 (SCR) / 4x8 (Cityscapes, H x W) -> flatten -> fully connected to one linear score.

    ``norm``: ``"batch"`` -- BN on every stage, stage 1 included, as the tables list (also
    ``"batch-joint"``: the same network, called once on [real; fake; x̂] by the training step);
    ``"batch-realfake"`` -- the same placement with :class:`RowStatsBatchNorm` (statistics of real + fake);
    ``"layer"`` -- per-sample normalisation over H, W, C with per-channel scale and offset
    (``GroupNormalization(groups=1)``), none after the first conv, as in the WGAN-GP reference
    code; ``"none"``.  Only ``"layer"`` and ``"none"`` make the score of one sample independent
    of the rest of the batch, which the per-sample gradient penalty assumes (docs/decisions).
    A smaller ``height`` drops the *last* (widest) stages so the critic still ends at 4x4 / 4x8.
    """
    spec = task_spec(task)
    if norm not in CRITIC_NORMS:
        raise ValueError(f"unknown critic norm {norm!r}: expected one of {', '.join(CRITIC_NORMS)}")
    width_div = _positive_int(width_div, "width_div")
    h, w, n = _gan_stages(task, height, width, "critic")
    pair = keras.Input((h, w, spec.pair_channels), name="pair")
    x, c_in = pair, spec.pair_channels
    for stage, c in enumerate(CRITIC_KERNELS[spec.family][:n], start=1):
        batch_norm = norm.startswith("batch")
        normalised = batch_norm or (norm == "layer" and stage > 1)
        x = layers.Conv2D(c := _narrow(c, width_div), GAN_KERNEL, strides=2, padding="same",
                          use_bias=not normalised, kernel_initializer=he_normal(GAN_KERNEL ** 2 * c_in),
                          name=f"critic_stage{stage}_conv")(x)
        if norm == "batch-realfake":
            x = RowStatsBatchNorm(name=f"critic_stage{stage}_bn")(x)
        elif batch_norm:
            x = _bn(f"critic_stage{stage}_bn")(x)
        elif normalised:
            x = layers.GroupNormalization(groups=1, epsilon=LN_EPSILON, name=f"critic_stage{stage}_ln")(x)
        x = layers.ReLU(name=f"critic_stage{stage}_relu")(x)
        c_in = c
    x = layers.Flatten(name="critic_flatten")(x)
    score = layers.Dense(1, kernel_initializer=he_normal(int(x.shape[-1])), dtype="float32",
                         name="critic_output_dense")(x)
    return keras.Model(pair, score, name=f"critic_{spec.name}_{norm}")


def build_unet(task, *, height: int | None = None, width: int | None = None,
               width_div: int = 1) -> keras.Model:
    """U-Net segmentation network, thesis Table 4.2 (SCR) / 4.4 (Cityscapes).

    Encoder stage: two 3x3 convs (ReLU, same padding) then 2x2 average pooling; encoded features:
    two convs; decoder stage: bilinear x2 upsampling, concat with the matching encoder stage's
    features (before pooling), two convs; output: 3x3 conv to ``n_classes`` logits with no
    activation.  64 kernels everywhere and 3 pooling levels (SCR); 256 and 4 (Cityscapes).  No
    batch normalisation ("In contrast to our GANs", paper §IV).  ``width_div`` divides the 64 / 256.
    """
    spec = task_spec(task)
    width_div = _positive_int(width_div, "width_div")
    h, w = _size(task, height, width)
    levels = UNET_LEVELS[spec.family]
    if h % 2 ** levels or w % 2 ** levels:
        raise ValueError(f"U-Net for {spec.name}: height={h} and width={w} must both be multiples of "
                         f"2^{levels} = {2 ** levels} (one 2x2 pooling per level, Table {_table(task)[1]})")
    k = _narrow(UNET_KERNELS[spec.family], width_div)

    def conv(x, name, filters=k, activation="relu", dtype=None):
        n_in = UNET_KERNEL ** 2 * int(x.shape[-1])
        return layers.Conv2D(filters, UNET_KERNEL, padding="same", activation=activation,
                             kernel_initializer=he_normal(n_in), name=name, dtype=dtype)(x)

    image = keras.Input((h, w, spec.image_channels), name="image")
    x, skips = image, []
    for level in range(1, levels + 1):
        x = conv(conv(x, f"unet_enc{level}_conv1"), f"unet_enc{level}_conv2")
        skips.append(x)
        x = layers.AveragePooling2D(2, name=f"unet_enc{level}_pool")(x)
    x = conv(conv(x, "unet_features_conv1"), "unet_features_conv2")
    for stage in range(1, levels + 1):  # Table 4.2: decoder stage 1 concatenates encoder stage 3
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"unet_dec{stage}_up")(x)
        x = layers.Concatenate(name=f"unet_dec{stage}_concat")([x, skips[levels - stage]])
        x = conv(conv(x, f"unet_dec{stage}_conv1"), f"unet_dec{stage}_conv2")
    logits = conv(x, "unet_output_conv", filters=spec.n_classes, activation=None, dtype="float32")
    return keras.Model(image, logits, name=f"unet_{spec.name}")
