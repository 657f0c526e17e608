#!/usr/bin/env python
"""Write N generated image+mask pairs of a finished pair GAN to disk (thesis §4.1-4.2).

``python experiments/sample_pairs.py --gan-dir DIR --n N --out DIR [--seed S] [--format png|npz]
[--batch B] [--sampling-bn moving|batch] [--overwrite]``

png: ``images/000000.png`` (uint8 grey / RGB) + ``masks/000000.png`` (uint8 class ids); npz: one
``pairs.npz`` (``images`` float32 in [-1, 1], ``labels`` uint8, ``z``).  ``manifest.json`` (written
last) records the seed, the GAN run and its settings, and its quality scores when
``DIR/quality/gan_quality.json`` exists.  The same seed gives the same pairs, whatever ``--batch``
(with ``--sampling-bn moving``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_seg_aug.cli.arg_types import directory_or_new, positive_int, run_path  # noqa: E402

from gan_seg_aug.config import SAMPLING_BN  # noqa: E402  (no TensorFlow: --help stays fast)
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402
from gan_seg_aug.export.sample_disk import FORMATS, check_request  # noqa: E402


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan-dir", required=True,
                   help="a finished GAN run directory (with done.json), as a path or relative to --runs-dir")
    p.add_argument("--runs-dir", type=directory_or_new, default=None, help="root of the run directories")
    p.add_argument("--n", type=positive_int, required=True, help="number of pairs to write")
    p.add_argument("--out", required=True, help="output directory (new or empty, or use --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: one image and one label PNG per pair (default); npz: one pairs.npz, held in memory")
    p.add_argument("--batch", type=positive_int, default=32,
                   help="pairs per generator call (default 32); with --sampling-bn batch also the BN statistics group")
    p.add_argument("--sampling-bn", choices=SAMPLING_BN, default="moving",
                   help="generator batch norm: moving averages (default, Keras inference mode) or the statistics "
                        "of each generated batch (the authors' sampling)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier sample set in --out (only its manifest, pairs.npz and numbered PNGs)")
    add_verbosity_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.gan_dir = run_path(args.gan_dir, args.runs_dir)
    configure(verbosity(args), stream=sys.stderr)  # progress on stderr; stdout: the one result line
    try:
        check_request(args.gan_dir, args.n, args.out, args.format, args.batch, args.sampling_bn, args.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from gan_seg_aug.cli.tf_quiet import import_tensorflow

    import_tensorflow()
    from gan_seg_aug.export.sample_disk import sample_to_disk

    try:
        manifest = sample_to_disk(args.gan_dir, args.n, args.out, seed=args.seed, fmt=args.format, batch=args.batch,
                                  sampling_bn=args.sampling_bn, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} pairs to {Path(args.out)} ({manifest.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
