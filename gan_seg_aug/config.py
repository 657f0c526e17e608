"""Frozen configuration: run profiles, GAN and U-Net settings (the tasks' facts: :mod:`gan_seg_aug.tasks`).

Every default cites the section of the thesis (Neff 2018, ``003_…``) or the paper (``000_…``)
it comes from.  A profile (``paper`` / ``cpu`` / ``smoke``) only changes *how much* is run and at
*what scale*; the algorithm is the same.  The effective config is saved next to every result and
checkpoint (``dataclasses.asdict``), so a number can always be traced to the settings behind it.

Profile rules (documented in docs/decisions.md, "Run profiles"):

* ``paper`` -- thesis §4.2 / §5.1.2 / §5.2.2 exactly: full-size networks (Tables 4.1-4.4),
  10,000 GAN iterations, U-Net early stopping with 3,000 minimum iterations and 3,000 patience.
* ``cpu``   -- the same architecture family, scaled so a whole SCR fold (GAN + U-Net + evaluation)
  fits in about an hour on 2 CPU cores: half the image side (one fewer generator / critic stage,
  the widest one dropped), channel widths divided by ``width_div``, and fewer iterations.
* ``smoke`` -- seconds; for tests and CI only.  Its numbers mean nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# The tasks' facts live in gan_seg_aug/tasks.py; imported here too, where every module has always found them.
from gan_seg_aug.tasks import (CITYSCAPES, CITYSCAPES_CATEGORIES, FAMILY_MIN_SIDE, SCR_LUNG, TASKS,  # noqa: F401
                               TaskSpec, family_sides, family_spec, normalise_task, task_fields, task_name,
                               task_spec)

PROFILES = ("paper", "cpu", "smoke")
PRECISIONS = ("float32", "mixed_bfloat16")
AUTO_PRECISION = "auto"  # a profile's / --precision's "as fast as this hardware allows" (training/precision.py)
STRATEGIES = ("default", "mirrored", "multiworker")  # --strategy (distribute.make_strategy)
# How the critic is normalised (docs/decisions.md §3).  "batch": BN, real / fake / interpolated minibatches
# in three separate critic calls (three batch statistics); "batch-joint": one call on [real; fake; x̂], one
# statistic; "batch-realfake": one call, BN statistics of real + fake only, applied to x̂ as well;
# "layer": per-sample layer norm (thesis §3.3.1, WGAN-GP reference code); "none".
CRITIC_NORMS = ("batch", "batch-joint", "batch-realfake", "layer", "none")
# How the generator's BN normalises when sampling pairs for U-Net training: "moving" (Keras inference mode,
# moving averages) or "batch" (statistics of the generated minibatch, as the authors' code does).
SAMPLING_BN = ("moving", "batch")

@dataclass(frozen=True)
class NetScale:
    """Resolution and width of the networks (and, where a task's GAN needs it, its own length).
    ``width_div`` divides every conv's kernel count.

    For the GAN, a smaller side removes generator / critic stages (4x4 start for SCR, 8x4 W x H
    for Cityscapes); the *widest* stages are the ones dropped, so the high-resolution end of the
    thesis network is kept.  ``width_div=1`` at the paper size is exactly Tables 4.1-4.4.
    """

    height: int
    width: int
    gan_width_div: int = 1
    unet_width_div: int = 1
    gan_iterations: int = 0  # 0 = the profile's; a task whose GAN needs another length says so here


@dataclass(frozen=True)
class Profile:
    name: str
    scale: dict  # task -> NetScale
    gan_iterations: int
    unet_min_iterations: int
    unet_patience: int
    unet_val_every: int
    unet_max_iterations: int  # safety cap; the paper has none (0 = no cap)
    gan_sample_every: int
    gan_checkpoint_every: int
    max_cases: int = 0  # 0 = all; smoke runs use a subset to stay in seconds
    precision: str = "float32"  # or AUTO_PRECISION: bf16 where the hardware has it (training/precision.py)
    note: str = ""


PROFILE_TABLE: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        scale={"scr_lung": NetScale(256, 256), "cityscapes": NetScale(128, 256)},
        gan_iterations=10_000,  # §5.1.2 and §5.2.2: 10000 iterations per GAN
        unet_min_iterations=3_000,  # §4.2: "at least 3000 iterations"
        unet_patience=3_000,  # §4.2: stop when 3000 iterations passed since the last minimum
        unet_val_every=100,  # not stated in the thesis; see docs/decisions.md
        unet_max_iterations=0,
        gan_sample_every=500,
        gan_checkpoint_every=250,
        note="thesis schedule and full-size networks (Tables 4.1-4.4); days per run without a GPU",
    ),
    "cpu": Profile(
        name="cpu",
        scale={
            "scr_lung": NetScale(128, 128, gan_width_div=4, unet_width_div=2),
            # the paper's 128x256 (a 64x128 U-Net stopped at 0.49 mIoU).  The GAN at width/8 and 2,000
            # iterations did not train (pair consistency 0.06 of 0.58); width/4 for the thesis' 10,000 iterations
            # (§5.2.2) does (docs/decisions.md "The Cityscapes GAN at the cpu profile")
            "cityscapes": NetScale(128, 256, gan_width_div=4, unet_width_div=8, gan_iterations=10_000),
        },
        gan_iterations=2_000,  # Cityscapes: its NetScale's
        unet_min_iterations=600,
        unet_patience=600,  # = the minimum, the thesis' ratio (3000 / 3000); 400 stopped on noise (decisions.md)
        unet_val_every=50,
        # a safety net only: the thesis rule, not the cap, ends a cpu run.  8,000 ended Cityscapes runs still
        # improving (docs/decisions.md "The cpu profile's safety cap"); runs the rule ended below it stand
        unet_max_iterations=30_000,
        gan_sample_every=250,
        gan_checkpoint_every=100,
        # bf16 where native (docs/decisions.md "Precision of the cpu profile": the speed and the evidence)
        precision=AUTO_PRECISION,
        note="same architecture family scaled for 2 CPU cores: half side, narrower, fewer iterations",
    ),
    "smoke": Profile(
        name="smoke",
        scale={
            "scr_lung": NetScale(32, 32, gan_width_div=32, unet_width_div=8),
            "cityscapes": NetScale(32, 64, gan_width_div=32, unet_width_div=32),
        },
        gan_iterations=4,
        unet_min_iterations=6,
        unet_patience=4,
        unet_val_every=2,
        unet_max_iterations=20,
        gan_sample_every=2,
        gan_checkpoint_every=2,
        max_cases=48,
        note="seconds-long plumbing check; numbers are meaningless",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILE_TABLE:
        raise ValueError(f"unknown --profile {name!r}: expected one of {', '.join(PROFILES)}")
    return PROFILE_TABLE[name]


def net_scale(task, profile: str) -> NetScale:
    """The networks' size for ``task`` at ``profile``: the profile's row of the task's family (so exactly the
    table above for the paper tasks).  A task of that family at another side (own data, ``--side``) keeps the
    row's side ratio to the paper profile and its width divisors, never below the family's smallest network.
    """
    spec, row = task_spec(task), get_profile(profile).scale[task_spec(task).family]
    reference = family_spec(task)
    if (spec.height, spec.width) == (reference.height, reference.width):
        return row
    height = max(FAMILY_MIN_SIDE[spec.family], row.height * spec.height // reference.height)
    return dataclasses.replace(row, height=height, width=height * spec.width // spec.height)


@dataclass(frozen=True)
class GANConfig:
    """WGAN-GP settings (thesis §4.2, Tables 4.1 / 4.3; Gulrajani et al. defaults)."""

    task: str | TaskSpec  # a paper task's name, or the spec of any other (recorded in full in config.json)
    profile: str
    height: int
    width: int
    gan_width_div: int
    iterations: int
    batch_size: int  # Table 4.1: 16, Table 4.3: 8
    n_critic: int = 5  # WGAN-GP reference schedule: 5 critic updates per generator update
    gp_lambda: float = 10.0  # §4.2: lambda = 10
    learning_rate: float = 1e-4  # Tables 4.1/4.3: Adam(eta=0.0001, beta1=0.5, beta2=0.9)
    beta_1: float = 0.5
    beta_2: float = 0.9
    latent_dim: int = 128  # Table 4.1: z in R^128 ~ N(0, 1)
    # Tables 4.1/4.3 list BN in the critic, §3.3.1 and the authors' code use layer norm; measured on real JSRT,
    # layer norm is the best stable variant (docs/decisions.md §3, results/gan_quality/)
    critic_norm: str = "layer"
    sample_every: int = 500
    checkpoint_every: int = 250
    seed: int = 0
    precision: str = "float32"
    # XLA for the whole iteration: measured slower on CPU and failing with bf16 (docs/decisions.md §9)
    jit_compile: bool = False

    def __post_init__(self):
        object.__setattr__(self, "task", normalise_task(self.task))  # a recorded spec is a TaskSpec again
        if self.critic_norm not in CRITIC_NORMS:
            raise ValueError(f"unknown critic norm {self.critic_norm!r}: expected one of {CRITIC_NORMS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown --precision {self.precision!r}: expected one of {PRECISIONS}")


@dataclass(frozen=True)
class UNetConfig:
    """Segmentation-network settings (thesis §4.2, Tables 4.2 / 4.4; paper Tables II / IV)."""

    task: str | TaskSpec  # as GANConfig.task
    profile: str
    height: int
    width: int
    unet_width_div: int
    n_real: int  # pairs per minibatch from the real training set
    n_generated: int  # pairs per minibatch sampled on the fly from the fold's generator
    augment: bool
    min_iterations: int
    patience: int
    val_every: int
    max_iterations: int
    learning_rate: float = 1e-4  # Tables 4.2/4.4: Adam(0.0001, 0.5, 0.9)
    beta_1: float = 0.5
    beta_2: float = 0.9
    loss: str = "softmax"  # §2.6.3 softmax cross-entropy; see docs/decisions.md on §4.2.1 "sigmoid"
    # generator BN when sampling the generated pairs: not stated in the thesis; the two modes measured alike on
    # real JSRT, so Keras' inference mode stays (docs/decisions.md §3)
    sampling_bn: str = "moving"
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool = False  # XLA for the update step: off by measurement (docs/decisions.md §9)

    def __post_init__(self):
        object.__setattr__(self, "task", normalise_task(self.task))
        if self.sampling_bn not in SAMPLING_BN:
            raise ValueError(f"unknown --sampling-bn {self.sampling_bn!r}: expected one of {', '.join(SAMPLING_BN)}")
        if self.n_real < 0 or self.n_generated < 0 or self.n_real + self.n_generated == 0:
            raise ValueError(f"invalid mix {self.n_real}-{self.n_generated}: need R-G with R, G >= 0 and R + G > 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown --precision {self.precision!r}: expected one of {PRECISIONS}")

    @property
    def batch_size(self) -> int:
        return self.n_real + self.n_generated

    @property
    def network_id(self) -> str:
        """Paper Tables II / IV naming, e.g. ``8-8-NoAug``."""
        return f"{self.n_real}-{self.n_generated}-{'Aug' if self.augment else 'NoAug'}"


def gan_config(task: str, profile: str = "paper", **overrides) -> GANConfig:
    spec, prof, s = task_spec(task), get_profile(profile), net_scale(task, profile)
    base = dict(
        task=normalise_task(task), profile=profile, height=s.height, width=s.width, gan_width_div=s.gan_width_div,
        iterations=s.gan_iterations or prof.gan_iterations, batch_size=spec.gan_batch,
        sample_every=prof.gan_sample_every, checkpoint_every=prof.gan_checkpoint_every,
    )
    base.update(overrides)
    return GANConfig(**base)


VALID_MIXES = {name: task_spec(name).valid_mixes for name in TASKS}


def parse_mix(mix: str, task: str | None = None) -> tuple[int, int]:
    """Parse ``--mix R-G``.  Any R, G >= 0 with R + G > 0 is accepted; the paper's mixes are
    listed in :data:`VALID_MIXES`.

    >>> parse_mix("8-8")
    (8, 8)
    """
    parts = mix.split("-") if isinstance(mix, str) else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"invalid --mix {mix!r}: expected R-G with two whole numbers, e.g. 8-8 or 4-4")
    r, g = int(parts[0]), int(parts[1])
    if r + g == 0:
        raise ValueError(f"invalid --mix {mix!r}: the minibatch would be empty (R + G must be > 0)")
    return r, g


def unet_config(task: str, profile: str = "paper", mix: str | None = None, augment: bool = False,
                **overrides) -> UNetConfig:
    prof, s = get_profile(profile), net_scale(task, profile)
    r, g = parse_mix(mix or task_spec(task).default_mix)
    base = dict(
        task=normalise_task(task), profile=profile, height=s.height, width=s.width, unet_width_div=s.unet_width_div,
        n_real=r, n_generated=g, augment=augment,
        min_iterations=prof.unet_min_iterations, patience=prof.unet_patience,
        val_every=prof.unet_val_every, max_iterations=prof.unet_max_iterations,
    )
    base.update(overrides)
    return UNetConfig(**base)


def to_dict(cfg) -> dict:
    """A JSON-ready dict of a config dataclass (nested dataclasses included)."""
    return dataclasses.asdict(cfg)
