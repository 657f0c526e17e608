"""`python experiments/compare.py results/ [--markdown results/comparison.md]`: our Tables I-IV vs the paper.

Prints, for every ``table_<N>.csv`` in the results directory, our value next to the paper's
(``results/paper/``), the difference and a verdict (rules in ``gan_seg_aug/reporting/paper_comparison.py``); with
``--markdown`` also writes the same comparison as Markdown, atomically, with provenance.
"""
import argparse
import datetime
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a plain checkout too

from gan_seg_aug.reporting import paper_comparison as C  # noqa: E402
from gan_seg_aug.artifacts import atomic_write_text, git_commit  # noqa: E402
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402

log = logging.getLogger("gan_seg_aug.experiments.compare")  # __name__ is __main__ when run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="experiments/compare.py", description=__doc__.splitlines()[0])
    p.add_argument("results_dir", nargs="?", default=str(C.REPO_ROOT / "results"),
                   help="directory holding table_I.csv ... table_IV.csv (default: %(default)s)")
    p.add_argument("--markdown", default=None, help="also write the comparison as Markdown to this file")
    p.add_argument("--paper-dir", default=str(C.PAPER_DIR), help="the paper's tables (default: %(default)s)")
    add_verbosity_args(p)
    args = p.parse_args(argv)
    configure(verbosity(args))
    try:
        comparisons = C.compare_results(args.results_dir, args.paper_dir)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(C.format_text(comparisons))
    if args.markdown:
        # provenance() would import TensorFlow just for a date; the commit and date are what matter here.
        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        footer = (f"\n_Made by `experiments/compare.py {args.results_dir}` at commit {git_commit()} on {date}; "
                  f"each row's own profile, dataset, commit and date are in the table CSVs._\n")
        atomic_write_text(args.markdown, C.format_markdown(comparisons) + footer)
        log.info(f"wrote {args.markdown}")
    if not comparisons:
        print(f"error: no table_*.csv in {args.results_dir}: run experiments/tables.py first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
