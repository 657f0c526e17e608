#!/usr/bin/env python
"""Train the pair WGAN-GP of one fold (thesis §4.2; paper §III).

``python experiments/train_gan.py --task scr_lung --fold 1 [--profile paper|cpu|smoke] [--data-dir DIR]
[--strategy default|mirrored|multiworker] [--jit-compile]``

The run directory (default ``<runs-dir>/<task>/<profile>/<dataset>/fold<k>/gan_critic-<norm>``, see
``gan_seg_aug/layout.py``) is what the U-Net
experiments sample from; an interrupted run continues where it stopped, a finished one is reused.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_seg_aug import config as C  # noqa: E402
from gan_seg_aug.cli.arg_types import positive_int  # noqa: E402
from gan_seg_aug.cli.flags import (add_data_args, add_execution_args, add_gan_args, add_run_args,  # noqa: E402
                                   strategy_from_args)
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402
from gan_seg_aug.experiment import RunSettings  # noqa: E402

log = logging.getLogger("gan_seg_aug.experiments.train_gan")  # __name__ is __main__ when run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="experiments/train_gan.py", description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, choices=C.TASKS)
    p.add_argument("--fold", type=positive_int, default=1, help="fold number, from 1 (SCR: 1-3, Cityscapes: 1)")
    add_data_args(p)
    p.add_argument("--out", default=None,
                   help="run directory (default <runs-dir>/<task>/<profile>/<dataset>/fold<k>/gan_critic-<norm>)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint / reuse a finished run (default); "
                        "--no-resume starts this run over")
    add_gan_args(p)
    p.add_argument("--iterations", type=positive_int, default=None, help="GAN iterations (default: the profile's)")
    p.add_argument("--gan-width-div", type=positive_int, default=None,
                   help="divide the GAN's kernel counts by this (default: the profile's; docs/decisions.md)")
    add_run_args(p)
    add_execution_args(p, models=("gan",))
    add_verbosity_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure(verbosity(args))
    settings = RunSettings(task=args.task, fold=args.fold, profile=args.profile, seed=args.seed,
                           precision=args.precision, critic_norm=args.critic_norm, sampling_bn=args.sampling_bn,
                           quality=args.quality, data_dir=args.data_dir, allow_partial=args.allow_partial,
                           cache_dir=args.cache_dir, runs_dir=args.runs_dir, gan_iterations=args.iterations,
                           gan_width_div=args.gan_width_div,
                           jit_compile_gan=args.jit_compile_gan, train_cases=args.train_cases)
    strategy = strategy_from_args(args)  # first: MultiWorkerMirroredStrategy must precede other TF work
    from gan_seg_aug.experiment import choose_profile, load_fold, train_fold_gan

    profile = choose_profile(args.profile)
    data, fold, split_path = load_fold(settings, profile)
    log.info(f"fold {args.fold} of {split_path.name}: {len(fold['train'])} training cases")
    train_fold_gan(settings, profile, data, fold, out=args.out, resume=args.resume, strategy=strategy)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:  # bad data / flags / mismatched run dir: one clear line
        sys.exit(f"error: {e}")
