#!/usr/bin/env python
"""Copy the light files of finished runs into a results directory, in the runs' own layout.

``python experiments/publish_runs.py RUNS_DIR OUT_DIR``   e.g. ``... /work/runs/cpu_real results/cpu_real/runs``

Configs, summaries, per-image metrics, training curves, GAN quality reports and one shrunk sample grid
per GAN -- never checkpoints, weights or data (:mod:`gan_seg_aug.export.publish`).  Idempotent: run it
after every finished row of a sweep; ``tables.py --collect-only --runs-dir OUT_DIR`` and ``compare.py
--runs-dir OUT_DIR`` then work from the published copy alone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="experiments/publish_runs.py", description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", help="a --runs-dir of the experiment commands")
    p.add_argument("out_dir", help="where the light copies go, e.g. results/cpu_real/runs")
    args = p.parse_args(argv)
    from gan_seg_aug.cli.log_setup import configure
    from gan_seg_aug.export.publish import publish_runs

    configure(0)
    try:
        publish_runs(args.runs_dir, args.out_dir)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
