#!/usr/bin/env python
"""Train the pair WGAN-GP of one fold (thesis §4.2; paper §III).

``python experiments/train_gan.py --task scr_lung --fold 1 [--profile paper|cpu|smoke] [--data-dir DIR]
[--strategy default|mirrored|multiworker] [--jit-compile]``

The run directory (default ``runs/<task>/<profile>/<dataset>/fold<k>/gan``) is what the U-Net
experiments sample from; an interrupted run continues where it stopped, a finished one is reused.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_seg_aug.cli.arg_types import positive_int  # noqa: E402

from gan_seg_aug import config as C  # noqa: E402
from gan_seg_aug.cli.flags import add_execution_args, strategy_from_args  # noqa: E402
from gan_seg_aug.layout import default_runs_dir  # noqa: E402
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402

log = logging.getLogger("gan_seg_aug.experiments.train_gan")  # __name__ is __main__ when run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, choices=C.TASKS)
    p.add_argument("--fold", type=positive_int, default=1, help="fold number, from 1 (SCR: 1-3, Cityscapes: 1)")
    p.add_argument("--profile", choices=C.PROFILES, default=None,
                   help="paper | cpu | smoke (default: paper with a GPU, else cpu)")
    p.add_argument("--data-dir", default=None, help="dataset root; omitted = the embedded synthetic dataset")
    p.add_argument("--allow-partial", action="store_true", help="accept fewer cases than the paper's dataset")
    p.add_argument("--runs-dir", default=str(default_runs_dir()), help="root of all run directories")
    p.add_argument("--cache-dir", default=None, help="preprocessing cache (default ~/.cache/gan_seg_aug)")
    p.add_argument("--out", default=None,
                   help="run directory (default <runs-dir>/<task>/<profile>/<dataset>/fold<k>/gan_critic-<norm>)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint / reuse a finished run (default); "
                        "--no-resume starts this run over")
    p.add_argument("--critic-norm", choices=C.CRITIC_NORMS, default=C.GANConfig.critic_norm,
                   help="critic normalisation (docs/decisions.md §3; default %(default)s)")
    p.add_argument("--sampling-bn", choices=C.SAMPLING_BN, default=C.UNetConfig.sampling_bn,
                   help="generator batch norm of the final quality report (default %(default)s)")
    p.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True,
                   help="quality checks during training and a full report at the end (trains the fold's "
                        "16-0-NoAug reference U-Net first if missing; default on)")
    p.add_argument("--iterations", type=positive_int, default=None, help="GAN iterations (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=C.PRECISIONS, default="float32")
    add_execution_args(p, models=("gan",))
    add_verbosity_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure(verbosity(args))
    strategy = strategy_from_args(args)  # first: MultiWorkerMirroredStrategy must precede other TF work
    from gan_seg_aug.data.loaders import load_task, task_split
    from gan_seg_aug.data.splits import fold_of
    from gan_seg_aug.experiment import choose_profile, ensure_reference_unet, final_quality_report, strategy_is_local
    from gan_seg_aug.training.gan_trainer import train_gan
    from gan_seg_aug.layout import gan_dir

    profile = choose_profile(args.profile)
    data = load_task(args.task, args.data_dir, allow_partial=args.allow_partial, cache_dir=args.cache_dir,
                     max_cases=C.get_profile(profile).max_cases)
    split, split_path = task_split(data)
    fold = fold_of(split, args.fold)
    overrides = {"iterations": args.iterations} if args.iterations else {}
    cfg = C.gan_config(args.task, profile, seed=args.seed, precision=args.precision, critic_norm=args.critic_norm,
                       jit_compile=args.jit_compile_gan, **overrides)
    out = Path(args.out) if args.out else gan_dir(args.runs_dir, args.task, profile, data.source, args.fold,
                                                  cfg.critic_norm, cfg.seed, cfg.precision)
    log.info(f"fold {args.fold} of {split_path.name}: {len(fold['train'])} training cases")
    context = {"data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None, "fold": args.fold}
    reporter = None
    if args.quality and strategy_is_local(strategy):
        from gan_seg_aug.reporting.gan_report import Reporter

        unet_args = scr_args(args, profile) if args.task == "scr_lung" else city_args(args, profile)
        reference = ensure_reference_unet(args.task, unet_args, out.parent)
        reporter = Reporter(out, {**C.to_dict(cfg), "dataset": data.source}, data, fold, reference_dir=reference)
    train_gan(cfg, data, fold["train"], out, resume=args.resume, strategy=strategy, reporter=reporter, context=context)
    if reporter is not None:
        final_quality_report(reporter, out, args.sampling_bn)
    return 0


def scr_args(args, profile):
    """The reference U-Net's settings, through the experiment command's own parser (its defaults)."""
    from gan_seg_aug.cli.flags import build_parser

    return build_parser("scr_lung").parse_args(_common(args, profile) + ["--fold", str(args.fold)])


def city_args(args, profile):
    from gan_seg_aug.cli.flags import build_parser

    return build_parser("cityscapes").parse_args(_common(args, profile))


def _common(args, profile) -> list:
    argv = ["--profile", profile, "--runs-dir", args.runs_dir, "--precision", args.precision]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.allow_partial:
        argv.append("--allow-partial")
    if args.cache_dir:
        argv += ["--cache-dir", args.cache_dir]
    return argv


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:  # bad data / flags / mismatched run dir: one clear line
        sys.exit(f"error: {e}")
