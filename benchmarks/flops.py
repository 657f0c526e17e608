"""Analytic floating-point operation counts of the Keras models (for utilisation figures).

What is counted, and why:

* Only the multiply-accumulates (MACs) of convolutions, transposed convolutions and dense layers,
  2 FLOPs each (one multiply, one add).  They are >99 % of the arithmetic of every network of
  thesis Tables 4.1-4.4; batch norm, ReLU, pooling, bilinear upsampling, bias adds and the Adam
  update are memory-bound elementwise work that a "% of the matmul peak" figure should not be
  credited with.  Utilisation computed from these counts is therefore "model FLOPs utilisation"
  (the MFU convention of large-model training reports), a lower bound on hardware utilisation.
* A kernel of shape ``(*k, a, b)`` is applied once per *output* position for a convolution
  (``k^2 C_in/groups C_out`` MACs per output pixel) and once per *input* position for a
  transposed convolution (each input pixel scatters a ``k x k x C_out`` patch); a dense layer
  once per row.  So ``MACs = positions x prod(kernel.shape)`` in all three cases.
* Training a layer costs its forward pass plus two backward products of the same size (gradient
  with respect to the input and with respect to the weights): ``train = 3 x forward``
  (:data:`TRAIN_MULTIPLE`).  The first layer needs no input gradient; the 3x convention ignores
  that (it overcounts the first conv of an image network by one forward, <1 % here).

A WGAN-GP iteration (thesis Algorithm 4, Eq. 3.12) is counted as, per sample of the minibatch::

    n_critic x [ G fwd                              (fake pairs, no gradient to G)
               + 3 D fwd  real   (fwd + 2 bwd)
               + 3 D fwd  fake   (fwd + 2 bwd)
               + 6 D fwd  interpolates x^         (GP_MULTIPLE, below) ]
    + generator step: 3 G fwd + 2 D fwd          (D: fwd + input gradient only; no D weight grads)

The gradient penalty's graph is ``D(x^)`` plus its input gradient (2 D forwards); differentiating
that graph with respect to the critic's weights ("double backward") costs about twice the graph
again (4), so :data:`GP_MULTIPLE` = 6.  This is a documented convention, not a measurement: the
true cost of second-order terms of ReLU nets is slightly lower (ReLU'' = 0 drops some products).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TRAIN_MULTIPLE = 3  # forward + input gradient + weight gradient
GP_MULTIPLE = 6  # D(x^) + dD/dx^ (2), then the gradient of that w.r.t. the weights (~2x again)
GEN_STEP_CRITIC_MULTIPLE = 2  # the generator step runs D forward and back to its input only

# Layer classes whose kernel is used once per output position / per input position / per row.
_CONV_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D")
_TRANSPOSED_CLASSES = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_DENSE_CLASSES = ("Dense",)


@dataclass(frozen=True)
class LayerCount:
    """Forward multiply-accumulates of one layer for ONE sample."""

    name: str
    kind: str  # Keras class name
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _shape(tensor, what: str) -> tuple:
    shape = tuple(tensor.shape)
    if any(d is None for d in shape[1:]):
        raise ValueError(f"{what} has an unknown dimension ({shape}): build the model with a fixed input size "
                         f"to count its FLOPs")
    return shape


def layer_counts(model) -> list[LayerCount]:
    """Per-layer forward MACs of one sample, nested models expanded (names joined with ``/``).

    Layers without a kernel (normalisation, activations, pooling, resizing, merging) count 0 and
    are left out.  A layer called more than once in the graph, or a weighted layer of an unknown
    kind, is refused rather than silently miscounted.

    >>> import keras
    >>> x = keras.Input((8, 8, 3))
    >>> y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c")(x)     # 4x4x4 outputs
    >>> y = keras.layers.Conv2DTranspose(2, 5, strides=2, padding="same", name="t")(y)  # 4x4 inputs
    >>> [(c.name, c.macs) for c in layer_counts(keras.Model(x, y))]
    [('c', 1728), ('t', 3200)]

    (``c``: 4*4 positions x 3*3*3*4 = 1728; ``t``: 4*4 input positions x 5*5*2*4 = 3200.)
    """
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):  # a nested functional model
            out += [LayerCount(f"{layer.name}/{c.name}", c.kind, c.macs) for c in layer_counts(layer)]
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            if any(getattr(w, "name", "").endswith("kernel") for w in layer.weights):
                raise ValueError(f"flops: layer {layer.name!r} ({kind}) has kernels this counter does not know")
            continue
        if len(getattr(layer, "_inbound_nodes", [])) > 1:
            raise ValueError(f"flops: layer {layer.name!r} is called {len(layer._inbound_nodes)} times in "
                             f"{model.name!r}; shared layers are not supported")
        k = math.prod(int(d) for d in kernel.shape)
        if kind in _CONV_CLASSES or kind in _DENSE_CLASSES:
            positions = math.prod(_shape(layer.output, f"output of {layer.name!r}")[1:-1])
        elif kind in _TRANSPOSED_CLASSES:
            positions = math.prod(_shape(layer.input, f"input of {layer.name!r}")[1:-1])
        else:
            raise ValueError(f"flops: layer {layer.name!r} is a {kind}, which has a kernel but is not one of the "
                             f"counted kinds ({', '.join(_CONV_CLASSES + _TRANSPOSED_CLASSES + _DENSE_CLASSES)})")
        out.append(LayerCount(layer.name, kind, int(positions) * k))
    return out


def forward_flops(model, batch: int = 1) -> int:
    """FLOPs of one forward pass over ``batch`` samples (2 x MACs)."""
    return 2 * batch * sum(c.macs for c in layer_counts(model))


def train_step_flops(model, batch: int) -> int:
    """FLOPs of one supervised training step (forward + backward) on ``batch`` samples: 3 x forward.

    E.g. the paper's SCR U-Net step (Table 4.2, 16 pairs of 256x256) is
    ``train_step_flops(build_unet("scr_lung"), 16)``.
    """
    return TRAIN_MULTIPLE * forward_flops(model, batch)


def critic_step_flops(generator, critic, batch: int) -> int:
    """FLOPs of one critic update of WGAN-GP (see the module docstring for the breakdown)."""
    g, d = forward_flops(generator, batch), forward_flops(critic, batch)
    return g + 2 * TRAIN_MULTIPLE * d + GP_MULTIPLE * d


def generator_step_flops(generator, critic, batch: int) -> int:
    """FLOPs of one generator update: G forward and backward, D forward and input gradient."""
    g, d = forward_flops(generator, batch), forward_flops(critic, batch)
    return TRAIN_MULTIPLE * g + GEN_STEP_CRITIC_MULTIPLE * d


def wgan_gp_iteration_flops(generator, critic, batch: int, n_critic: int = 5) -> int:
    """FLOPs of one WGAN-GP iteration: ``n_critic`` critic updates + one generator update
    (thesis Algorithm 4; ``n_critic`` = 5).

    >>> import keras
    >>> g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])     # 6 MACs
    >>> d = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])     # 3 MACs
    >>> # critic step: 12 + 12 * 6 = 84; generator step: 3 * 12 + 2 * 6 = 48
    >>> wgan_gp_iteration_flops(g, d, batch=1, n_critic=5)
    468
    """
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    return n_critic * critic_step_flops(generator, critic, batch) + generator_step_flops(generator, critic, batch)


def gflops_per_second(flops: float, seconds: float) -> float:
    """Achieved GFLOP/s; NaN when the time is not positive."""
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def summary(model, batch: int = 1) -> str:
    """A per-layer table (name, kind, forward GFLOP for ``batch`` samples, share of the total)."""
    counts = layer_counts(model)
    total = sum(c.macs for c in counts) or 1
    lines = [f"{'layer':40s} {'kind':18s} {'GFLOP':>10s} {'share':>7s}"]
    lines += [f"{c.name:40s} {c.kind:18s} {2 * batch * c.macs / 1e9:10.3f} {c.macs / total:7.1%}" for c in counts]
    lines.append(f"{'total forward':40s} {'':18s} {2 * batch * total / 1e9:10.3f}")
    return "\n".join(lines)
