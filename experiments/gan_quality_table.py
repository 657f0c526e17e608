#!/usr/bin/env python
"""Collect the GANs of one fold into one table (docs/decisions.md §3).

``python experiments/gan_quality_table.py FOLD_DIR --out results/gan_quality``

FOLD_DIR is ``<runs>/<task>/<profile>/<dataset>/fold<k>``; every finished ``gan_*`` directory in it is a
row per sampling mode with a quality report (``experiments/gan_quality.py``).  Writes ``gan_quality.csv``,
``gan_quality.md``, and per GAN its final sample grid and quality figures, shrunk to at most 720 px wide
(small PNGs; never checkpoints).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_seg_aug.cli.arg_types import directory_or_new, run_path  # noqa: E402

SHORT = ["critic_norm", "sampling_bn", "health", "w_final", "w_second_half_median", "gp_second_half_median",
         "seconds_per_iteration", "pair_consistency", "pair_consistency_ceiling", "kid_vs_train",
         "kid_real_val_vs_train", "precision", "recall", "precision_real_val", "recall_real_val",
         "one_component_fraction", "memorised_fraction"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fold_dir", help="<runs>/<task>/<profile>/<dataset>/fold<k>, as a path or relative to --runs-dir")
    p.add_argument("--out", required=True, help="output directory, e.g. results/gan_quality")
    p.add_argument("--runs-dir", type=directory_or_new, default=None, help="root of the run directories")
    args = p.parse_args(argv)
    args.fold_dir = run_path(args.fold_dir, args.runs_dir)
    from gan_seg_aug.artifacts import atomic_write_bytes, atomic_write_csv, atomic_write_text
    from gan_seg_aug.export.publish import small_png
    from gan_seg_aug.reporting.gan_quality_table import quality_table, to_markdown

    fold = Path(args.fold_dir)
    if not fold.is_dir():
        sys.exit(f"error: {fold}: not a directory (expected <runs>/<task>/<profile>/<dataset>/fold<k>)")
    try:
        frame = quality_table(fold)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    out = Path(args.out)
    atomic_write_csv(out / "gan_quality.csv", frame)
    atomic_write_text(out / "gan_quality.md", to_markdown(frame, [c for c in SHORT if c in frame]) + "\n")
    for name in sorted(set(frame["gan_dir"])):
        gdir = fold / name
        grids = sorted((gdir / "samples").glob("iter_*.png"))
        figures = [grids[-1]] if grids else []
        figures += sorted((gdir / "quality").glob("gan_quality_bn-*.png"))
        for src in figures:
            tag = "final_samples" if src.parent.name == "samples" else src.stem
            atomic_write_bytes(out / f"{name}_{tag}.png", small_png(src.read_bytes()))
    print(f"wrote {out / 'gan_quality.csv'} ({len(frame)} rows) and figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
