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
GAN_CURVE = "metrics.csv"  # a GAN run's logged training curve (critic / W / penalty / generator loss)
UNET_WEIGHTS = "best.weights.h5"  # a trained U-Net's network (published copies of runs never have it)
WEIGHT_SUFFIXES = (".npz", ".h5", ".keras")  # checkpoints and weights: never published
QUALITY_DIR = "quality"


def default_runs_dir() -> Path:
    return REPO_ROOT / "runs"


def fold_dir(runs_dir, task, profile: str, dataset: str, fold: int, train_cases: int | None = None) -> Path:
    """``task``: a paper task's name or any other task's TaskSpec (its directory is its name).  A training
    subset (``--train-cases N``) is its own training set, with its own GAN: ``fold<k>_train<N>``."""
    from gan_seg_aug.tasks import task_name

    name = f"fold{fold}" + (f"_train{train_cases}" if train_cases else "")
    return Path(runs_dir) / task_name(task) / profile / dataset / name


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


def unet_run_name(task, n_real: int, n_generated: int, aug=None, *, critic_norm: str | None = None,
                  sampling_bn: str | None = None, seed: int = 0) -> str:
    """A U-Net run's directory name, from every setting that changes its result.

    The paper's settings keep the paper's network ids (``8-8-NoAug``, ``16-0-Aug``); any other
    augmentation is spelled out; runs on generated pairs name the GAN variant and sampling mode.

    >>> from gan_seg_aug.augment.settings import AUG_PRESETS, AugParams
    >>> unet_run_name("scr_lung", 16, 0, AUG_PRESETS["scr_lung"]), unet_run_name("scr_lung", 16, 0, seed=1)
    ('16-0-Aug', '16-0-NoAug_seed1')
    >>> unet_run_name("scr_lung", 8, 8, AugParams(scale_std=0.05), critic_norm="layer", sampling_bn="moving")
    '8-8-aug_sh0_sc0.05_tr0_el0_flip0_critic-layer_bn-moving'
    """
    from gan_seg_aug.augment.settings import aug_name, is_preset
    from gan_seg_aug.tasks import task_spec

    mix = f"{n_real}-{n_generated}"
    if aug is None:
        name = f"{mix}-NoAug"
    else:  # --aug is the preset of the task's family (own data: of the paper task whose networks it uses)
        name = f"{mix}-Aug" if is_preset(aug, task_spec(task).family) else f"{mix}-{aug_name(aug)}"
    if n_generated > 0 and critic_norm is not None:
        name += f"_critic-{critic_norm}_bn-{sampling_bn}"
    if seed:
        name += f"_seed{seed}"
    return name


def gan_dir(runs_dir, task, profile, dataset, fold, critic_norm, seed=0, precision="float32",
            train_cases: int | None = None) -> Path:
    return fold_dir(runs_dir, task, profile, dataset, fold, train_cases) / gan_dir_name(critic_norm, seed, precision)


def runs_root_of(run_dir) -> Path:
    """The ``<runs_dir>`` that holds ``<runs_dir>/<task>/<profile>/<dataset>/fold<k>/<run>``.

    >>> runs_root_of("/r/scr_lung/cpu/real/fold1/gan_critic-layer").as_posix()
    '/r'
    """
    parents = Path(run_dir).parents
    return parents[4] if len(parents) > 4 else Path(run_dir).parent


def recorded_precision(run_dir) -> str:
    """The precision a U-Net run trained in, from its ``config.json`` (summaries written before they
    recorded it do not say); float32 when there is no config."""
    return recorded_config(run_dir).get("precision", "float32")


def recorded_stopping_rule(run_dir) -> str | None:
    """``"<min>/<patience>/<val_every>/<cap>"``: the early-stopping rule a U-Net run trained under, from its
    ``config.json``; None without one.

    >>> import json, tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "config.json").write_text(json.dumps({"config": {"min_iterations": 600, "patience": 600,
    ...                                                 "val_every": 50, "max_iterations": 8000}}))
    >>> recorded_stopping_rule(d), recorded_stopping_rule(d / "missing")
    ('600/600/50/8000', None)
    """
    return stopping_rule(recorded_config(run_dir))


def stopping_rule(cfg: dict) -> str | None:
    """``"<min>/<patience>/<val_every>/<cap>"`` of a U-Net config's fields; None if one is missing."""
    keys = ("min_iterations", "patience", "val_every", "max_iterations")
    return "/".join(str(cfg[k]) for k in keys) if all(k in cfg for k in keys) else None


def recorded_config(run_dir) -> dict:
    """The ``config`` a U-Net run recorded in its ``config.json``; {} without one."""
    from gan_seg_aug.artifacts import read_json

    path = Path(run_dir) / "config.json"
    return (read_json(path).get("config") or {}) if path.exists() else {}


def is_finished_gan(path) -> bool:
    return (Path(path) / GAN_DONE).exists()


def quality_dir(gan_dir) -> Path:
    return Path(gan_dir) / QUALITY_DIR
