"""The experiment commands' flags: one owner for their spelling, defaults and help (``scr_lung.py``,
``cityscapes.py``, ``own_data.py``, ``train_gan.py``, ``tables.py``, ...), their translation into the library's
:class:`~gan_seg_aug.experiment.RunSettings`, and back into flags for the sweep's commands."""
from __future__ import annotations

import argparse

from gan_seg_aug import config as C
from gan_seg_aug.augment.settings import ELASTIC_BACKENDS
from gan_seg_aug.cli.arg_types import directory_or_new, positive_int
from gan_seg_aug.cli.log_setup import add_verbosity_args
from gan_seg_aug.layout import default_runs_dir


class OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line on stderr, not the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_common_args(p: argparse.ArgumentParser, task: str | None, *, data_dir: bool = True) -> None:
    """The flags of one experiment run; ``task`` None: own data, whose paper mixes depend on its shape
    (``data_dir=False``: no --data-dir and no --allow-partial, which only the paper datasets have)."""
    if task is None:
        p.add_argument("--mix", default=None, help="R-G: real and generated pairs per minibatch (default: 8-8 for "
                                                   "square pairs, 4-4 for 1:2 ones, as the paper's tasks)")
    else:
        mixes = ", ".join(C.VALID_MIXES[task])
        p.add_argument("--mix", default=C.VALID_MIXES[task][1],
                       help=f"R-G: real and generated pairs per minibatch (paper: {mixes}; default %(default)s)")
    add_aug_args(p)
    add_data_args(p, data_dir=data_dir, allow_partial=data_dir)
    p.add_argument("--out", default=None, help="this run's directory (default: derived from the settings)")
    p.add_argument("--gan-checkpoint", default=None,
                   help="a finished GAN run directory to sample from (default: the fold's own, trained if needed)")
    add_gan_args(p)
    add_run_args(p)
    add_execution_args(p, models=("gan", "unet"))


def add_aug_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aug", action="store_true", help="standard augmentation with the paper's preset (bold rows)")
    p.add_argument("--shift-std", type=float, default=None, help="intensity shift N(0, s) (implies augmentation)")
    p.add_argument("--scale-std", type=float, default=None, help="intensity scaling N(1, s)")
    p.add_argument("--translate-std", type=float, default=None, help="translation N(0, s px) at paper resolution")
    p.add_argument("--elastic-std", type=float, default=None, help="B-spline control-point displacement N(0, s px)")
    p.add_argument("--flip", action="store_true", help="horizontal flip with p = 0.5")
    p.add_argument("--elastic-backend", choices=ELASTIC_BACKENDS, default="fast",
                   help="fast: the B-spline field evaluated with NumPy + cv2.remap; simpleitk: SimpleITK's "
                        "BSplineTransform + Resample (same field, ~10x slower; default %(default)s)")


def add_data_args(p: argparse.ArgumentParser, *, data_dir: bool = True, allow_partial: bool = True) -> None:
    """Where data, caches and runs live: the same flags, with the same meaning, in every command."""
    p.add_argument("--profile", choices=C.PROFILES, default=None,
                   help="paper | cpu | smoke (default: paper with a GPU, else cpu)")
    if data_dir:
        p.add_argument("--data-dir", default=None, help="dataset root; omitted = the embedded synthetic dataset")
    if allow_partial:
        p.add_argument("--allow-partial", action="store_true", help="accept fewer cases than the paper's dataset")
    p.add_argument("--runs-dir", type=directory_or_new, default=str(default_runs_dir()),
                   help="root of all run directories (default %(default)s)")
    p.add_argument("--cache-dir", default=None, help="preprocessing cache (default ~/.cache/gan_seg_aug)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of the GAN and the U-Net (default %(default)s)")
    p.add_argument("--precision", choices=(C.AUTO_PRECISION, *C.PRECISIONS), default=C.AUTO_PRECISION,
                   help="auto (default): the profile's -- float32 for paper and smoke; for cpu, mixed_bfloat16 "
                        "where the hardware computes bf16 natively (AVX512-BF16 / AMX CPU, GPU >= 8.0), else float32")
    p.add_argument("--train-cases", type=positive_int, default=None, metavar="N",
                   help="train GAN and U-Net on a fixed nested subset of N of the fold's training cases (saved "
                        "beside the split; validation and test sets unchanged): the low-data ladder")


def add_gan_args(p: argparse.ArgumentParser) -> None:
    """The GAN settings every command shares (one owner for their spelling and defaults)."""
    p.add_argument("--critic-norm", choices=C.CRITIC_NORMS, default=C.GANConfig.critic_norm,
                   help="critic normalisation (docs/decisions.md §3): batch = BN with separate real / fake / "
                        "interpolate calls; batch-joint / batch-realfake = BN on one joint call; layer = the "
                        "authors' released code and the WGAN-GP reference; none (default %(default)s)")
    p.add_argument("--sampling-bn", choices=C.SAMPLING_BN, default=C.UNetConfig.sampling_bn,
                   help="generator batch norm when sampling pairs for the U-Net: moving averages or the "
                        "statistics of the generated part of each minibatch (default %(default)s)")
    p.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True,
                   help="GAN quality report (trains the fold's 16-0-NoAug reference U-Net first if missing; "
                        "default on)")


def add_execution_args(p: argparse.ArgumentParser, models=("gan", "unet")) -> None:
    """How the steps run -- not what they compute (docs/scaling.md, docs/decisions.md §9)."""
    p.add_argument("--strategy", choices=C.STRATEGIES, default="default",
                   help="default: one device; mirrored: all GPUs of this machine; multiworker: the cluster in "
                        "TF_CONFIG (--out / --runs-dir on a shared filesystem; the chief writes)")
    p.add_argument("--logical-cpus", type=int, default=0, metavar="N",
                   help="split the CPU into N logical devices (with --strategy mirrored: test multi-replica "
                        "training without GPUs)")
    for m in models:
        flag = "--jit-compile" if len(models) == 1 else f"--jit-compile-{m}"
        p.add_argument(flag, action="store_true", dest=f"jit_compile_{m}",
                       help=f"XLA for the {'GAN iteration' if m == 'gan' else 'U-Net step'} (off by default: "
                            f"slower on CPU, fails with bf16 there; see docs/decisions.md §9)")


def strategy_from_args(args):
    """The run's tf.distribute strategy; call it before any other TensorFlow work (MultiWorker's rule)."""
    from gan_seg_aug.cli.tf_quiet import import_tensorflow

    import_tensorflow()  # after argument parsing: --help and argument errors answer without TensorFlow
    from gan_seg_aug.training.distribute import make_strategy

    if args.logical_cpus < 0:
        raise SystemExit(f"error: --logical-cpus must be >= 0, got {args.logical_cpus}")
    try:
        return make_strategy(args.strategy, logical_cpus=args.logical_cpus)
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None


def aug_from_args(task, args):
    """The paper preset for ``--aug``; explicit ``--*-std`` / ``--flip`` flags build any other setting."""
    import dataclasses

    from gan_seg_aug.augment.settings import AUG_PRESETS, AugParams

    custom = {k: getattr(args, k) for k in ("shift_std", "scale_std", "translate_std", "elastic_std")
              if getattr(args, k) is not None}
    if args.aug and (custom or args.flip):
        raise SystemExit("error: --aug selects the paper's preset; do not combine it with --shift-std/--scale-std/"
                         "--translate-std/--elastic-std/--flip (use those alone for a custom setting)")
    backend = getattr(args, "elastic_backend", "fast")
    if args.aug:  # own data: the preset of the paper task whose networks it uses
        return dataclasses.replace(AUG_PRESETS[C.task_spec(task).family], elastic_backend=backend)
    if custom or args.flip:
        for k, v in custom.items():
            if v < 0:
                raise SystemExit(f"error: --{k.replace('_', '-')} must be >= 0, got {v}")
        return AugParams(flip=bool(args.flip), elastic_backend=backend, **custom)
    return None


def settings_from_args(task, args):
    """The library's :class:`RunSettings` from a parsed experiment command line (``task``: a paper task's
    name, or own data's TaskSpec)."""
    from gan_seg_aug.experiment import RunSettings

    return RunSettings(
        task=task, fold=getattr(args, "fold", 1), mix=args.mix, aug=aug_from_args(task, args), profile=args.profile,
        seed=args.seed, precision=args.precision, critic_norm=args.critic_norm, sampling_bn=args.sampling_bn,
        quality=args.quality, data_dir=getattr(args, "data_dir", None) or getattr(args, "images", None),
        masks_dir=getattr(args, "masks", None), allow_partial=getattr(args, "allow_partial", False),
        cache_dir=args.cache_dir, runs_dir=args.runs_dir, out=args.out, gan_checkpoint=args.gan_checkpoint,
        jit_compile_unet=bool(getattr(args, "jit_compile_unet", False)),
        jit_compile_gan=bool(getattr(args, "jit_compile_gan", False)), train_cases=getattr(args, "train_cases", None))


def aug_argv(aug, task) -> list[str]:
    """The flags that select ``aug``: ``--aug`` for the paper's preset, else only the non-zero parts.

    >>> from gan_seg_aug.augment.settings import AugParams
    >>> aug_argv(AugParams(scale_std=0.05, translate_std=10, elastic_std=10), "scr_lung")
    ['--scale-std', '0.05', '--translate-std', '10', '--elastic-std', '10']
    """
    from gan_seg_aug.augment.settings import is_preset

    if aug is None:
        return []
    if is_preset(aug, C.task_spec(task).family):
        return ["--aug"]
    flags = []
    for flag, value in (("--shift-std", aug.shift_std), ("--scale-std", aug.scale_std),
                        ("--translate-std", aug.translate_std), ("--elastic-std", aug.elastic_std)):
        if value:
            flags += [flag, f"{value:g}"]
    return flags + (["--flip"] if aug.flip else [])


def add_folder_args(p: argparse.ArgumentParser) -> None:
    """The own-data task: a folder of images and one of masks (docs/own_data.md, gan_seg_aug/data/folder.py)."""
    g = p.add_argument_group("your data")
    g.add_argument("--images", required=True, help="folder of images (PNG / JPEG / TIFF / BMP / GIF, grey or RGB)")
    g.add_argument("--masks", required=True,
                   help="folder of masks matched to the images by file stem, also with a suffix: <stem>_mask.png")
    g.add_argument("--classes", type=int, default=None, metavar="K",
                   help="masks hold labels 0..K-1 (default: binary {0, 255} / {0, 1}, else the largest label + 1)")
    g.add_argument("--colours", "--colors", default=None, metavar="CSV",
                   help="colour-coded masks: one line name,r,g,b per class, background first")
    g.add_argument("--aspect", choices=("auto", "1:1", "1:2"), default="auto",
                   help="pair shape H:W: 1:1 = the SCR networks, 1:2 = the Cityscapes ones (default: from the images)")
    g.add_argument("--side", type=int, default=None, metavar="S",
                   help="training rows at the paper profile (a power of two up to 256 / 128; default: the largest "
                        "that enlarges no image or mask); the cpu and smoke profiles scale it as for the paper tasks")
    g.add_argument("--spacing-mm", type=float, default=None, metavar="X",
                   help="mm per mask pixel: distances in mm (default: in pixels of the masks)")
    g.add_argument("--largest-component", action="store_true",
                   help="keep the largest connected component of each prediction (SCR's post-processing; binary "
                        "masks; leave it off when the foreground has several parts)")
    g.add_argument("--name", default=None, help="the task's name (default own_<folder>, from the folders' parent)")


def own_data_settings(args):
    """:class:`RunSettings` for ``experiments/own_data.py``: the folder's TaskSpec, then the usual flags."""
    from gan_seg_aug.data.folder import describe

    if args.mix is not None:
        C.parse_mix(args.mix)  # a bad flag is reported before the folder is read
    spec = describe(args.images, args.masks, classes=args.classes, colours=args.colours, side=args.side,
                    aspect=args.aspect, spacing_mm=args.spacing_mm, name=args.name,
                    largest_component=args.largest_component)
    return settings_from_args(spec, args)


def main(task: str, argv=None) -> int:
    """``experiments/scr_lung.py`` / ``experiments/cityscapes.py``: parse, then run one experiment."""
    return run_command(build_parser(task), lambda args: settings_from_args(task, args), argv)


def run_command(parser: argparse.ArgumentParser, make_settings, argv=None) -> int:
    """Parse, build the :class:`RunSettings` (a bad setting or data folder: one line), run one experiment."""
    import sys

    from gan_seg_aug.cli.log_setup import configure, verbosity

    args = parser.parse_args(argv)
    configure(verbosity(args))
    try:
        settings = make_settings(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    strategy = strategy_from_args(args)  # first TF work: MultiWorkerMirroredStrategy must precede the rest
    from gan_seg_aug.experiment import run

    try:
        run(settings, strategy=strategy)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser(task: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"experiments/{task}.py",
        description=f"Train (or reuse) the fold's GAN, train a U-Net on the --mix, evaluate on the test set ({task}).")
    if task == "scr_lung":
        p.add_argument("--fold", type=int, default=1, choices=(1, 2, 3), help="cross-validation fold (paper §V-A)")
    add_common_args(p, task)
    add_verbosity_args(p)
    return p
