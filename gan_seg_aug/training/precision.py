"""``--precision auto|float32|mixed_bfloat16`` for GAN and U-Net training.

The thesis trained in float32 on a Tesla K80 (§4.2 / chapter 5); bfloat16 is an implementation
speed-up only and must not change the algorithm.  Under Keras' ``mixed_bfloat16`` policy the
layers *compute* in bfloat16 while their *variables* (and hence the Adam moments, which Keras
creates with the variables' dtype) stay float32.  What else stays float32, and why:

* the networks' last layers (``models.py`` builds them with ``dtype="float32"``), so logits,
  generated pairs and critic scores are float32;
* the losses -- softmax cross-entropy (thesis Eq. 2.42) and the Wasserstein terms (Eq. 3.12) --
  are computed on float32 tensors (:func:`float32`);
* the gradient penalty's norm ``||grad D(x^)||`` and ``(norm - 1)^2`` (Eq. 3.12): the gradient
  with respect to the float32 input ``x^`` arrives as float32 through the input cast; the
  products inside the critic's backward pass are bfloat16 (that is where the speed-up is).

bfloat16 has float32's exponent range, so no loss scaling is needed (unlike float16).

Which one a run uses (:func:`choose_precision`): ``--precision`` when given; otherwise the profile's
(``Profile.precision``).  The paper and smoke profiles say float32.  The cpu profile says ``auto``:
mixed_bfloat16 where the hardware computes bfloat16 natively (a CPU with AVX512-BF16 or AMX-BF16, a GPU
of compute capability 8.0 or newer), float32 elsewhere, where bfloat16 is emulated and slower.  The
measurements behind that choice are in docs/decisions.md ("Precision of the cpu profile").  The
resolved name is what every config, summary and table records.

Use::

    with set_precision("mixed_bfloat16"):   # layers built here compute in bfloat16
        g = build_generator("scr_lung")
    # or, for a whole process: set_precision(cfg.precision)  (returns an undo handle)
"""
from __future__ import annotations

import logging

import keras
import tensorflow as tf

from gan_seg_aug.config import PRECISIONS  # ("float32", "mixed_bfloat16"): the configs validate against the same tuple
from gan_seg_aug.artifacts import cpu_fields
from gan_seg_aug.config import AUTO_PRECISION, get_profile

log = logging.getLogger(__name__)
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


def native_bfloat16(cpu_flags: set | None = None) -> str | None:
    """Why this machine computes bfloat16 natively ("GPU ...", "CPU flag ..."), or None if it does not.

    ``cpu_flags``: for tests; by default the flags of /proc/cpuinfo (empty where there is none).
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:  # TF places the work on the first GPU; bf16 tensor cores arrived with Ampere (8.0)
        cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return f"GPU of compute capability {cc[0]}.{cc[1]}" if tuple(cc) >= (8, 0) else None
    flags = _cpu_flags() if cpu_flags is None else set(cpu_flags)
    hit = [f for f in CPU_BF16_FLAGS if f in flags]
    return f"CPU flag {hit[0]}" if hit else None


def _cpu_flags() -> set:
    return set(cpu_fields().get("flags", "").split())


def choose_precision(requested: str | None, profile: str, *, cpu_flags: set | None = None) -> str:
    """The precision a run uses: ``requested`` (``--precision``) unless None / ``auto``, else the profile's;
    a profile's ``auto`` is mixed_bfloat16 where :func:`native_bfloat16` finds native support, float32 elsewhere.

    >>> choose_precision("float32", "cpu"), choose_precision(None, "paper"), choose_precision(None, "smoke")
    ('float32', 'float32', 'float32')
    """
    choice = get_profile(profile).precision if requested in (None, AUTO_PRECISION) else requested
    if choice != AUTO_PRECISION:
        return check_precision(choice)
    why = native_bfloat16(cpu_flags)
    if why:
        log.debug(f"precision: mixed_bfloat16 (profile {profile}, auto: {why})")
        return "mixed_bfloat16"
    log.debug(f"precision: float32 (profile {profile}, auto: no native bfloat16 on this machine)")
    return "float32"


def check_precision(name: str, flag: str = "--precision") -> str:
    if name not in PRECISIONS:
        raise ValueError(f"unknown {flag} {name!r}: expected one of {', '.join(PRECISIONS)}")
    return name


class PolicyRestore:
    """Undo handle returned by :func:`set_precision`: ``restore()`` it, or use it in ``with``."""

    def __init__(self, previous: str):
        self.previous = previous
        self._done = False

    def restore(self) -> None:
        if not self._done:
            keras.config.set_dtype_policy(self.previous)
            self._done = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False


def set_precision(name: str) -> PolicyRestore:
    """Set Keras' global dtype policy to ``name`` ("float32" | "mixed_bfloat16").

    Affects layers built afterwards only (a layer keeps the policy it was built with).  Returns a
    handle restoring the previous policy: ``with set_precision(p): ...`` or ``h = set_precision(p);
    ...; h.restore()``.
    """
    check_precision(name)
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    return PolicyRestore(previous)


def float32(x):
    """``x`` as a float32 tensor (losses, scores and the gradient penalty are computed in float32)."""
    return tf.cast(x, tf.float32)


def float32_loss(fn):
    """Wrap a loss function so its result is float32 and its tensor inputs are cast to float32 first.

    >>> import numpy as np
    >>> mse = float32_loss(lambda a, b: tf.reduce_mean(tf.square(a - b)))
    >>> out = mse(tf.constant([1.0, 2.0], tf.bfloat16), np.array([1.0, 0.0], np.float32))
    >>> out.dtype.name, float(out)
    ('float32', 2.0)
    """

    def wrapped(*args, **kwargs):
        cast = lambda v: float32(v) if _is_float_tensor(v) else v  # noqa: E731 -- labels stay integer
        out = fn(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})
        return float32(out)

    wrapped.__name__ = getattr(fn, "__name__", "loss")
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _is_float_tensor(v) -> bool:
    dtype = getattr(v, "dtype", None)
    if dtype is None:
        return False
    return tf.as_dtype(dtype).is_floating
