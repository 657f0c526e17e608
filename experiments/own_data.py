#!/usr/bin/env python
"""The paper's pipeline (GAN, real + generated mixes, U-Net, evaluation) on your own images and masks.

Guide: docs/own_data.md; library: gan_seg_aug/data/folder.py (the folder) and gan_seg_aug/experiment.py (the run).

``python experiments/own_data.py --images DIR --masks DIR [--classes K | --colours CSV] [--side S]
[--aspect auto|1:1|1:2] [--spacing-mm X] [--mix 8-8] [--aug] [--fold N] [--profile paper|cpu|smoke]``

Splits the folder into 3 folds (paper §V-A), trains (or reuses) the fold's pair GAN, trains a U-Net on the
--mix of real and generated pairs with the thesis' early stopping, and evaluates it on the fold's test set at
the masks' resolution: Dice and Hausdorff / HD95 / ASSD for binary masks (mm with --spacing-mm, else pixels),
mIoU for K classes.  Outputs and provenance are those of experiments/scr_lung.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a plain checkout too

from gan_seg_aug.cli.flags import (OneLineParser, add_common_args, add_folder_args,  # noqa: E402
                                   own_data_settings, run_command)
from gan_seg_aug.cli.log_setup import add_verbosity_args  # noqa: E402


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="experiments/own_data.py", description=__doc__.splitlines()[0])
    add_folder_args(p)
    p.add_argument("--fold", type=int, default=1, choices=(1, 2, 3), help="cross-validation fold (paper §V-A)")
    add_common_args(p, None, data_dir=False)
    add_verbosity_args(p)
    return p


if __name__ == "__main__":
    sys.exit(run_command(build_parser(), own_data_settings))
