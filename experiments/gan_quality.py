#!/usr/bin/env python
"""How good are a finished GAN's pairs?  The quality report of gan_seg_aug.evaluation.gan_quality, on demand.

``python experiments/gan_quality.py --gan-dir DIR [--n N] [--sampling-bn moving|batch|both] [--json]``

Needs the GAN's real data: its ``config.json`` records ``data_dir`` and ``fold`` (runs made before that
was recorded: pass ``--data-dir`` / ``--fold``).  The fold's ``16-0-NoAug`` (SCR) / ``8-0-NoAug``
(Cityscapes) U-Net beside the GAN directory is the reference network; it is trained first if missing
(``--no-train-reference``: report without it).  Writes ``DIR/quality/gan_quality_bn-<mode>.{json,png}``
and prints a summary; the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_seg_aug.cli.arg_types import directory_or_new  # noqa: E402
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402

log = logging.getLogger("gan_seg_aug.experiments.gan_quality")  # __name__ is __main__ when run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan-dir", required=True, help="a finished GAN run directory (holds done.json)")
    p.add_argument("--n", type=int, default=512, help="generated pairs per report (default %(default)s)")
    p.add_argument("--sampling-bn", choices=("moving", "batch", "both"), default="both",
                   help="generator batch norm while sampling (default %(default)s: one report each)")
    p.add_argument("--seed", type=int, default=2024, help="noise seed of the generated pairs")
    p.add_argument("--data-dir", default=None, help="dataset root (default: the one the GAN recorded)")
    p.add_argument("--fold", type=int, default=None, help="fold (default: the one the GAN recorded)")
    p.add_argument("--allow-partial", action="store_true", help="accept fewer cases than the paper's dataset")
    p.add_argument("--cache-dir", default=None, help="preprocessing cache (default ~/.cache/gan_seg_aug)")
    p.add_argument("--runs-dir", type=directory_or_new, default=None,
                   help="root of the run directories, where the reference U-Net is looked for / trained "
                        "(default: the root that holds --gan-dir)")
    p.add_argument("--train-reference", action=argparse.BooleanOptionalAction, default=True,
                   help="train the fold's reference U-Net if it is missing (default on)")
    p.add_argument("--force", action="store_true", help="recompute a report that exists")
    p.add_argument("--json", action="store_true", help="print only the JSON line (the notes go to stderr)")
    add_verbosity_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure(verbosity(args), stream=sys.stderr if args.json else None)  # stdout: the JSON line last
    gan_dir = Path(args.gan_dir)
    if not (gan_dir / "done.json").is_file():
        sys.exit(f"error: --gan-dir {gan_dir}: not a finished GAN run (no done.json)")
    if args.n < 5:
        sys.exit(f"error: --n {args.n}: expected at least 5 generated pairs")

    from gan_seg_aug.cli.tf_quiet import import_tensorflow

    import_tensorflow()
    from gan_seg_aug.artifacts import read_json
    from gan_seg_aug.data.loaders import load_task, task_split
    from gan_seg_aug.data.splits import fold_of
    from gan_seg_aug.experiment import RunSettings, ensure_reference_unet
    from gan_seg_aug.layout import runs_root_of
    from gan_seg_aug.evaluation.gan_quality import QualitySettings, concerns, report_name
    from gan_seg_aug.reporting.gan_report import Reporter
    from gan_seg_aug.training.gan_trainer import load_generator
    from gan_seg_aug.layout import quality_dir

    cfg = read_json(gan_dir / "config.json")
    task, profile = cfg["task"], cfg["profile"]
    data_dir = args.data_dir or cfg.get("data_dir")
    fold_no = args.fold or cfg.get("fold") or 1
    if cfg.get("dataset") == "real" and not data_dir:
        sys.exit(f"error: {gan_dir / 'config.json'} records no data_dir: pass --data-dir (the GAN was trained on real data)")
    from gan_seg_aug.config import get_profile

    data = load_task(task, data_dir, masks_dir=cfg.get("masks_dir"), allow_partial=args.allow_partial,
                     cache_dir=args.cache_dir,
                     max_cases=get_profile(profile).max_cases)
    split, _ = task_split(data, scratch_dir=Path(args.runs_dir or runs_root_of(gan_dir)) / "splits")
    fold = fold_of(split, fold_no)
    reference = None
    if args.train_reference:
        settings = RunSettings(task=task, fold=fold_no, profile=profile, precision=cfg.get("precision", "float32"),
                               data_dir=data_dir, allow_partial=args.allow_partial, cache_dir=args.cache_dir,
                               runs_dir=args.runs_dir or str(runs_root_of(gan_dir)))
        reference = ensure_reference_unet(settings, profile, gan_dir.parent)
    reporter = Reporter(gan_dir, cfg, data, fold, reference_dir=reference)
    generator = load_generator(gan_dir)
    iterations = read_json(gan_dir / "done.json")["iterations"]
    out = {"gan_dir": str(gan_dir), "critic_norm": cfg.get("critic_norm"), "iterations": iterations,
           "health": (read_json(gan_dir / "done.json").get("health") or {}).get("status"), "reports": {}}
    for mode in (("moving", "batch") if args.sampling_bn == "both" else (args.sampling_bn,)):
        path = quality_dir(gan_dir) / f"{report_name(mode)}.json"
        if path.exists() and not args.force:
            rep = read_json(path)
            log.info(f"[quality] {path} exists (--force to recompute)")
        else:
            rep = reporter.final(generator, QualitySettings(n=args.n, sampling_bn=mode, seed=args.seed), iterations)
        log.info(f"[quality] sampling BN {mode}: " + ", ".join(f"{k} {v:.4g}" for k, v in rep["summary"].items()))
        found = concerns(rep)
        for concern in found:
            log.warning(f"[quality] sampling BN {mode}: {concern}")
        out["reports"][mode] = rep["summary"] | {"concerns": found}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, KeyError) as e:
        sys.exit(f"error: {e}")
