"""`python experiments/compare.py results/ [--markdown FILE] [--runs-dir RUNS]`: our Tables I-IV vs the paper.

Prints, for every ``table_<N>.csv`` in the results directory, our value next to the paper's
(``results/paper/``), the difference and a verdict (rules in ``gan_seg_aug/reporting/paper_comparison.py``); with
``--markdown`` also writes the same comparison as Markdown, atomically, with provenance.

With ``--runs-dir RUNS`` it also computes the comparisons the paper draws between rows (8-8 vs 16-0,
Aug vs NoAug, ...; ``gan_seg_aug/reporting/run_statistics.py``) from every finished run below RUNS -- a
runs tree, or a results directory holding copied runs (``results/cpu_real/runs/...``: summary.json and the
per-image CSVs are enough, no checkpoints) -- with bootstrap CIs that include seed-to-seed noise, and
writes ``comparisons_stats.csv`` / ``comparisons_stats.md`` atomically to ``--stats-out`` (default: the
results directory, next to the tables), and, once the low-data ladder has a computed comparison, its
differences against training cases as ``ladder_differences.png``.  Next to them, ``comparisons_real_pairs.*``
set each mixed run (8-8, 4-4) against real-only runs after the same number of real pairs, including the
half-batch controls (8-0, 4-0) when they were run (``gan_seg_aug/reporting/real_pairs.py``).
"""
import argparse
import datetime
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a plain checkout too

from gan_seg_aug.reporting import paper_comparison as C  # noqa: E402
from gan_seg_aug.artifacts import atomic_write_csv, atomic_write_text, git_commit  # noqa: E402
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402
from gan_seg_aug.config import CRITIC_NORMS, SAMPLING_BN, GANConfig, UNetConfig  # noqa: E402
from gan_seg_aug.reporting.run_catalogue import LADDER  # noqa: E402

log = logging.getLogger("gan_seg_aug.experiments.compare")  # __name__ is __main__ when run
LADDER_FIGURE = "ladder_differences.png"  # the ladder's paired differences, next to comparisons_stats.csv


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="experiments/compare.py", description=__doc__.splitlines()[0])
    p.add_argument("results_dir", nargs="?", default=str(C.REPO_ROOT / "results"),
                   help="directory holding table_I.csv ... table_IV.csv (default: %(default)s)")
    p.add_argument("--markdown", default=None, help="also write the comparison as Markdown to this file")
    p.add_argument("--paper-dir", default=str(C.PAPER_DIR), help="the paper's tables (default: %(default)s)")
    g = p.add_argument_group("paired statistics between rows (only with --runs-dir)")
    g.add_argument("--runs-dir", default=None,
                   help="finished runs to compare (a runs tree or a results directory with a runs/ copy)")
    g.add_argument("--stats-out", default=None, help="where comparisons_stats.csv/.md go (default: RESULTS_DIR)")
    g.add_argument("--profile", default=None, help="profile of the runs (default: the only one found per task)")
    g.add_argument("--dataset", choices=("real", "synthetic"), default=None,
                   help="dataset of the runs (default: the only one found per task)")
    g.add_argument("--critic-norm", choices=CRITIC_NORMS, default=GANConfig.critic_norm,
                   help="GAN critic normalisation of the runs with generated pairs (default %(default)s)")
    g.add_argument("--sampling-bn", choices=SAMPLING_BN, default=UNetConfig.sampling_bn,
                   help="generator BN mode of the runs with generated pairs (default %(default)s)")
    g.add_argument("--n-boot", type=_positive, default=2000, help="bootstrap resamples (default %(default)s)")
    g.add_argument("--boot-seed", type=int, default=0, help="seed of the bootstrap (default %(default)s)")
    add_verbosity_args(p)
    return p.parse_args(argv)


def _footer(args, where="each row's own profile, dataset, commit and date are in the table CSVs") -> str:
    # provenance() would import TensorFlow just for a date; the commit and date are what matter here.
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return f"\n_Made by `experiments/compare.py {args.results_dir}` at commit {git_commit()} on {date}; {where}._\n"


def write_real_pairs(args, out: Path, want: dict, runs) -> None:
    """Mixed runs against real-only ones at equal real pairs seen (``gan_seg_aug/reporting/real_pairs.py``)."""
    from gan_seg_aug.reporting import real_pairs as RP

    lines, tests = RP.all_lines(runs, profile=args.profile, dataset=args.dataset, want=want,
                                n_boot=args.n_boot, seed=args.boot_seed)
    if lines.empty and tests.empty:
        return
    atomic_write_csv(out / "comparisons_real_pairs.csv", lines)
    atomic_write_csv(out / "comparisons_real_pairs_test.csv", tests)
    atomic_write_text(out / "comparisons_real_pairs.md", RP.to_markdown(lines, tests) + _footer(
        args, f"runs from `{args.runs_dir}`; each line's run directories are in comparisons_real_pairs.csv"))
    log.info(f"wrote {out / 'comparisons_real_pairs.csv'}, comparisons_real_pairs_test.csv and .md")


def run_stats(args) -> int:
    """The paired statistics; returns the number of comparison lines with a computed difference."""
    from gan_seg_aug.reporting import run_statistics as S

    want = {"critic_norm": args.critic_norm, "sampling_bn": args.sampling_bn}
    runs = S.discover(args.runs_dir)  # once: the statistics and the real-pairs reading share it
    frame = S.compare_runs(runs, profile=args.profile, dataset=args.dataset, want=want,
                           n_boot=args.n_boot, seed=args.boot_seed, paper_dir=args.paper_dir)
    out = Path(args.stats_out or args.results_dir)
    atomic_write_csv(out / "comparisons_stats.csv", frame)
    atomic_write_text(out / "comparisons_stats.md", S.to_markdown(frame) + _footer(
        args, f"runs from `{args.runs_dir}`; each line's run directories are in comparisons_stats.csv"))
    log.info(f"wrote {out / 'comparisons_stats.csv'} and comparisons_stats.md")
    write_real_pairs(args, out, want, runs)
    if frame.loc[frame["table"] == LADDER, "mean_diff"].notna().any():
        from gan_seg_aug.reporting.result_figures import ladder_difference_plot
        from gan_seg_aug.reporting.viz import save_png

        log.info(f"wrote {save_png(ladder_difference_plot(frame), out / LADDER_FIGURE)}")
    done = frame[frame["mean_diff"].notna()]
    if len(done):
        print(S.to_markdown(done))
    return len(done)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure(verbosity(args))
    try:
        comparisons = C.compare_results(args.results_dir, args.paper_dir)
        if comparisons or not args.runs_dir:
            print(C.format_text(comparisons))
        if args.markdown:
            atomic_write_text(args.markdown, C.format_markdown(comparisons) + _footer(args))
            log.info(f"wrote {args.markdown}")
        n_stats = run_stats(args) if args.runs_dir else 0
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not comparisons and not n_stats:
        what = f" and no computable comparison of runs below {args.runs_dir}" if args.runs_dir else ""
        print(f"error: no table_*.csv in {args.results_dir}{what}: run experiments/tables.py first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
