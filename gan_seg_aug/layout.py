"""The on-disk layout of runs: one owner for every directory and marker name (nnU-Net's ``paths.py``).

::

    <runs_dir>/<task>/<profile>/<dataset>/fold<k>/
        gan_critic-<norm>[_seed<s>][_<precision>]/   one pair GAN per fold and setting (done.json = finished)
            quality/                                 its quality reports (gan_quality_bn-<mode>.json / .png)
        <network id>[...]/                           one U-Net run (summary.json = finished)

Every setting that changes a GAN's result is in its directory name, so two settings never share a
directory; the run guards (``gan_training._check_same_run``) refuse a directory that holds another run.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GAN_DONE, UNET_DONE = "done.json", "summary.json"
QUALITY_DIR = "quality"


def default_runs_dir() -> Path:
    return REPO_ROOT / "runs"


def fold_dir(runs_dir, task: str, profile: str, dataset: str, fold: int) -> Path:
    return Path(runs_dir) / task / profile / dataset / f"fold{fold}"


def gan_dir_name(critic_norm: str, seed: int = 0, precision: str = "float32") -> str:
    """``gan_critic-layer``, ``gan_critic-batch_seed1``, ...: named from every setting of the GAN.

    >>> gan_dir_name("layer"), gan_dir_name("batch-realfake", seed=1, precision="mixed_bfloat16")
    ('gan_critic-layer', 'gan_critic-batch-realfake_seed1_mixed_bfloat16')
    """
    name = f"gan_critic-{critic_norm}"
    if seed:
        name += f"_seed{seed}"
    if precision != "float32":
        name += f"_{precision}"
    return name


def gan_dir(runs_dir, task, profile, dataset, fold, critic_norm, seed=0, precision="float32") -> Path:
    return fold_dir(runs_dir, task, profile, dataset, fold) / gan_dir_name(critic_norm, seed, precision)


def is_finished_gan(path) -> bool:
    return (Path(path) / GAN_DONE).exists()


def quality_dir(gan_dir) -> Path:
    return Path(gan_dir) / QUALITY_DIR
