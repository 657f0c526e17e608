"""`python experiments/tables.py --table I|II|III|IV|all [--profile P] ...`: the paper's tables from runs.

Every row is one (or, for Table II, three) independent run(s) of ``experiments/scr_lung.py`` /
``experiments/cityscapes.py``; the configurations are listed in ``gan_seg_aug/reporting/run_catalogue.py``.  The
sweep goes fold by fold (``gan_seg_aug.training.job_queue.run_order``): the fold's runs on real pairs only, its GAN
(``experiments/train_gan.py``, idempotent), then the runs that sample from it -- so runs of one fold
never train the fold's GAN twice at once.  ``--jobs N`` runs N processes at a time; a U-Net that needs
a GAN starts as soon as that GAN is finished.  ``--publish-to DIR`` keeps a committable copy of the
finished runs and the tables current after every run.  Each run
logs to ``<runs>/<task>/<profile>/<dataset>/fold<K>/<run_name>.log``.  Finished runs are skipped,
interrupted ones resume (the commands are idempotent).

``--print-commands`` prints the shell commands instead (GAN stage first) for a cluster scheduler
or job array; after those ran, ``--collect-only`` builds the tables.

The tables (``<results>/table_<N>.csv``, written atomically) hold the paper's columns plus each
row's provenance (profile, dataset, iterations, seed, commit, date, run directory); rows without
a finished run are kept with status ``missing``.  A failed run is reported (command, exit code,
log) and makes the exit code non-zero, after the tables are written with the rows that exist.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a plain checkout too

from gan_seg_aug.reporting import run_catalogue as R  # noqa: E402
from gan_seg_aug.reporting import table_builder as T  # noqa: E402
from gan_seg_aug.cli.arg_types import directory_or_new  # noqa: E402
from gan_seg_aug.cli.flags import add_gan_args, aug_argv  # noqa: E402
from gan_seg_aug.config import AUTO_PRECISION, PRECISIONS  # noqa: E402
from gan_seg_aug.layout import fold_dir  # noqa: E402
from gan_seg_aug.layout import GAN_CURVE, gan_dir_name, is_finished_gan  # noqa: E402
from gan_seg_aug.export.publish import published_quality_report  # noqa: E402
from gan_seg_aug.training.job_queue import Job, execute, print_commands, shell_line  # noqa: E402
from gan_seg_aug.artifacts import atomic_write_csv  # noqa: E402
from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parent
SCRIPTS = {"scr_lung": EXPERIMENTS / "scr_lung.py", "cityscapes": EXPERIMENTS / "cityscapes.py",
           "gan": EXPERIMENTS / "train_gan.py", "quality": EXPERIMENTS / "gan_quality.py"}

log = logging.getLogger("gan_seg_aug.experiments.tables")  # __name__ is __main__ when run


def _csv_list(text: str, what: str, cast=str) -> list:
    try:
        items = [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"error: {what} {text!r}: expected a comma-separated list") from None
    if not items:
        raise SystemExit(f"error: {what} {text!r} is empty")
    return items


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="experiments/tables.py", description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True, choices=R.TABLES + (R.LADDER, "all"),
                   help="one of the paper's tables, 'ladder' (SCR fold 1 on nested subsets of 9, 25, 62 and all "
                        "training cases, each with its own GAN), or all (the paper's four)")
    p.add_argument("--profile", choices=("paper", "cpu", "smoke"), default=None,
                   help="paper | cpu | smoke (default: paper with a GPU, else cpu)")
    p.add_argument("--data-dir-scr", default=None, help="JSRT/SCR root (omitted: embedded synthetic data)")
    p.add_argument("--data-dir-cityscapes", default=None, help="Cityscapes root (omitted: embedded synthetic data)")
    p.add_argument("--allow-partial", action="store_true", help="accept fewer cases than the paper's datasets")
    p.add_argument("--runs-dir", type=directory_or_new, default=str(T.REPO_ROOT / "runs"),
                   help="root of the run directories")
    p.add_argument("--results-dir", default=str(T.REPO_ROOT / "results"), help="where table_<N>.csv go")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--folds", default="1,2,3", help="SCR folds of Table II (default 1,2,3; Table I is fold 1)")
    p.add_argument("--only", default=None,
                   help="comma-separated row ids / run names to run (e.g. 8-8-NoAug,16-0-Aug); others stay missing")
    p.add_argument("--print-commands", action="store_true", help="print one shell command per run and exit")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="passed to every run: mirrored = all GPUs of a machine per run (docs/scaling.md)")
    p.add_argument("--collect-only", action="store_true", help="build the tables from finished runs, run nothing")
    p.add_argument("--publish-to", default=None, metavar="DIR",
                   help="after every finished run, copy the runs' light files (no checkpoints) to DIR "
                        "(experiments/publish_runs.py) and rewrite the tables, e.g. results/cpu_real/runs; "
                        "finished U-Net runs found there and missing from --runs-dir are restored first")
    p.add_argument("--seed", type=int, default=0, help="seed of every GAN and U-Net run (default 0)")
    p.add_argument("--precision", choices=(AUTO_PRECISION, *PRECISIONS), default=AUTO_PRECISION,
                   help="of every run, and of the rows the tables take (default auto: the profile's on this "
                        "machine; give it explicitly to --collect-only runs made on another machine)")
    add_gan_args(p)
    add_verbosity_args(p)
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"error: --jobs {args.jobs}: expected a whole number >= 1")
    args.tables = list(R.TABLES) if args.table == "all" else [args.table]
    args.folds = tuple(_csv_list(args.folds, "--folds", int))
    if any(f not in R.SCR_FOLDS for f in args.folds):
        raise SystemExit(f"error: --folds {args.folds}: expected folds among 1,2,3")
    args.only = _csv_list(args.only, "--only") if args.only else None
    for flag in ("data_dir_scr", "data_dir_cityscapes"):
        d = getattr(args, flag)
        if d and not Path(d).is_dir():
            raise SystemExit(f"error: --{flag.replace('_', '-')} {d}: not a directory")
    return args


def data_dir(task: str, args):
    return args.data_dir_scr if task == "scr_lung" else args.data_dir_cityscapes


def dataset(task: str, args) -> str:
    """``real`` with a data directory, else ``synthetic`` (the commands' embedded default)."""
    return "real" if data_dir(task, args) else "synthetic"


def _data_flags(task, args) -> list:
    d = data_dir(task, args)
    return ((["--data-dir", str(d)] if d else []) + (["--allow-partial"] if args.allow_partial else [])
            + (["--strategy", args.strategy] if args.strategy != "default" else [])
            + ["--seed", str(args.seed), "--precision", args.precision, "--critic-norm", args.critic_norm]
            + ([] if args.quality else ["--no-quality"])
            # -v reaches the runs' logs; -q does not: their last line is the sweep's "ok" summary
            + (["-" + "v" * args.verbose] if args.verbose else []))


def want(args) -> dict:
    """The GAN and seed settings the table rows must have been run with (tables.matches)."""
    from gan_seg_aug.config import get_profile
    from gan_seg_aug.layout import stopping_rule

    p = get_profile(args.profile)
    rule = stopping_rule({"min_iterations": p.unet_min_iterations, "patience": p.unet_patience,
                          "val_every": p.unet_val_every, "max_iterations": p.unet_max_iterations})
    return {"seed": args.seed, "critic_norm": args.critic_norm, "sampling_bn": args.sampling_bn,
            "precision": args.precision, "stopping_rule": rule}


def _subset_flags(train_cases) -> list:
    return ["--train-cases", str(train_cases)] if train_cases else []


def gan_job(task: str, fold: int, args, train_cases=None) -> Job:
    fdir = fold_dir(args.runs_dir, task, args.profile, dataset(task, args), fold, train_cases)
    gdir = fdir / gan_dir_name(args.critic_norm, args.seed, args.precision)
    argv = [sys.executable, str(SCRIPTS["gan"]), "--task", task, "--fold", str(fold), "--profile", args.profile,
            *_data_flags(task, args), *_subset_flags(train_cases), "--sampling-bn", args.sampling_bn,
            "--runs-dir", str(args.runs_dir), "--out", str(gdir)]
    subset = f" ({train_cases} training cases)" if train_cases else ""
    job = Job(f"{task} fold {fold}{subset} GAN", argv, fdir / f"{gdir.name}.log", is_finished_gan(gdir),
              gan=(task, fold, train_cases), is_gan=True, fold=(task, fold, train_cases))
    published = Path(args.publish_to) / gdir.relative_to(args.runs_dir) if args.publish_to else None
    if args.quality and not job.finished and published is not None \
            and published_quality_report(published, args.sampling_bn):
        # A fresh machine retrains the fold's GAN from its seed; if the curve comes out byte-identical the
        # published report is this GAN's, and its reference U-Net (restored without weights) need not be retrained.
        job.argv = [a for a in argv if a != "--quality"] + ["--no-quality"]
        job.adopt_quality = (published, gdir, args.sampling_bn, (published / GAN_CURVE).read_bytes())
        job.quality_argv = [sys.executable, str(SCRIPTS["quality"]), "--gan-dir", str(gdir),
                            "--sampling-bn", args.sampling_bn, "--runs-dir", str(args.runs_dir)]
    return job


def unet_job(spec: R.RunSpec, args, finished) -> Job:
    fdir = fold_dir(args.runs_dir, spec.task, args.profile, dataset(spec.task, args), spec.fold, spec.train_cases)
    fold = ["--fold", str(spec.fold)] if spec.task == "scr_lung" else []  # cityscapes has one fold, no flag
    argv = [sys.executable, str(SCRIPTS[spec.task]), *fold, "--mix", spec.mix, *aug_argv(spec.aug, spec.task),
            "--profile", args.profile, *_data_flags(spec.task, args), *_subset_flags(spec.train_cases),
            "--runs-dir", str(args.runs_dir)]
    if spec.needs_gan:
        argv += ["--sampling-bn", args.sampling_bn]
    done = T.find_run(spec, finished[spec.task], want(args)) is not None
    subset = f" ({spec.train_cases} training cases)" if spec.train_cases else ""
    name = spec.run_name + (f"_seed{args.seed}" if args.seed else "")  # seeds of a row: their own logs
    return Job(f"{spec.task} fold {spec.fold}{subset} {name}", argv, fdir / f"{name}.log", done,
               gan=(spec.task, spec.fold, spec.train_cases) if spec.needs_gan else None,
               fold=(spec.task, spec.fold, spec.train_cases))


def plan(args) -> tuple[list, list]:
    """(GAN jobs, U-Net jobs) of the requested tables, shared runs once."""
    specs = [s for t in args.tables for r in R.select_rows(R.table_rows(t, args.folds), args.only) for s in r.runs]
    specs = list(dict.fromkeys(specs))
    if args.only:
        known = {s.run_name for s in specs} | {r.row_id for t in args.tables for r in R.table_rows(t, args.folds)}
        unknown = [x for x in args.only if x not in known]
        if unknown:
            raise SystemExit(f"error: --only {','.join(unknown)}: no such row or run in Table(s) "
                             f"{', '.join(args.tables)} (e.g. 8-8-NoAug, 16-0-Aug, sh0_sc0_tr0_el10)")
    finished = {task: T.finished_runs(args.runs_dir, task, args.profile, dataset(task, args))
                for task in {s.task for s in specs}}
    unets = [unet_job(s, args, finished) for s in specs]
    # a GAN is planned only for unfinished runs that sample from it: once its rows are done (e.g. restored
    # from the published results on a fresh machine) retraining it would cost a quarter hour for nothing
    gans = [gan_job(task, fold, args, n)
            for task, fold, n in dict.fromkeys(s.gan for s in unets if s.gan and not s.finished)]
    return gans, unets


def write_tables(args) -> list[Path]:
    out = []
    for t in args.tables:
        task = R.TABLE_TASK[t]
        # always the whole table: --folds chooses what runs, not what table_II.csv covers, so a sweep that
        # continues with fold 2 keeps fold 1 in the table (and marks its rows partial until fold 3 lands)
        # with --publish-to the rows are read from the published light copies, so the run_dir column of a
        # committed table names directories every checkout has, not this machine's runs directory
        frame = T.build_table(t, args.publish_to or args.runs_dir, args.profile, dataset(task, args), want=want(args))
        path = atomic_write_csv(Path(args.results_dir) / f"table_{t}.csv", frame)
        counts = frame["status"].value_counts().to_dict()
        log.info(f"wrote {path} ({len(frame)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()) +
                 f"; profile {args.profile}, {dataset(task, args)} data)")
        out.append(path)
        if t == R.LADDER and (frame["status"] == "ok").any():
            from gan_seg_aug.reporting.result_figures import ladder_plot
            from gan_seg_aug.reporting.viz import save_png

            out.append(save_png(ladder_plot(frame), Path(args.results_dir) / "ladder.png"))
            log.info(f"wrote {out[-1]} (test Dice against training cases)")
    return out


def refresh(args) -> None:
    """The tables from the runs finished so far, and with ``--publish-to`` the light copy of those runs
    (after every run of a sweep, so what has landed can be committed while the rest still runs)."""
    if args.publish_to:
        from gan_seg_aug.export.publish import publish_runs

        publish_runs(args.runs_dir, args.publish_to)
    write_tables(args)


def run_precision(args) -> str:
    """``--precision`` of every job and row: the requested one or, for ``auto``, the precision of the rows
    already published in ``--publish-to`` (any task of this profile), else the profile's on this machine.

    A sweep continued on another machine kind thus extends the published rows at their precision instead
    of starting rows of another precision beside them (the tables take rows of one precision only, so the
    published rows would drop out of the rewritten CSVs).  Extending bfloat16 rows where bfloat16 is only
    emulated is refused unless asked for: on an AVX2-only EPYC a cpu-profile U-Net step took 7.5x the
    float32 time (docs/decisions.md, "Precision of the cpu profile").  Errors exit 2, so a sweep script can
    stop at the first instead of repeating it for every table."""
    from gan_seg_aug.export.publish import published_precisions
    from gan_seg_aug.training.precision import check_precision, choose_precision, native_bfloat16

    found = published_precisions(args.publish_to, args.profile) if args.publish_to else set()
    published = min(found, default=None)  # the one precision there (several is an error below)
    where = f"--publish-to {args.publish_to} holds {args.profile}-profile rows"
    problem = None
    if len(found) > 1:
        problem = f"{where} of several precisions ({', '.join(sorted(found))}); expected one"
    elif found and args.precision != AUTO_PRECISION and check_precision(args.precision) not in found:
        problem = (f"--precision {args.precision}: {where} in {published}, and the tables take rows of one "
                   "precision; pass that one or another --publish-to")
    elif published == "mixed_bfloat16" and args.precision == AUTO_PRECISION and not args.collect_only \
            and native_bfloat16() is None:
        problem = (f"--precision auto: {where} in mixed_bfloat16, which this machine only emulates (several "
                   "times slower than float32); pass --precision mixed_bfloat16 to extend them anyway, or "
                   "--precision float32 with another --publish-to")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    return published or choose_precision(args.precision, args.profile)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure(verbosity(args))
    if args.profile is None:
        from gan_seg_aug.experiment import choose_profile

        args.profile = choose_profile(None)
    from gan_seg_aug.cli.tf_quiet import import_tensorflow

    import_tensorflow()  # the precision choice probes the devices; without TF's start-up chatter
    args.precision = run_precision(args)  # one name for every job and row
    if args.publish_to and not args.collect_only:
        from gan_seg_aug.export.publish import restore_runs

        restore_runs(args.publish_to, args.runs_dir)  # a sweep continued on a fresh machine keeps its rows
    gans, unets = plan(args)
    if args.print_commands:
        try:
            print_commands(gans, unets)
            sys.stdout.flush()
        except BrokenPipeError:  # `... --print-commands | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    failed = []
    if not args.collect_only:
        missing = sorted({str(p) for p in (Path(j.argv[1]) for j in gans + unets if not j.finished) if not p.exists()})
        if missing:
            print(f"error: experiment command(s) not found: {', '.join(missing)}", file=sys.stderr)
            return 2
        failed = execute(gans, unets, args.jobs, on_finished=lambda job: refresh(args))
    refresh(args)
    if failed:
        print(f"\n{len(failed)} run(s) did not finish; their rows are marked missing:", file=sys.stderr)
        for j in failed:
            why = "skipped, its GAN failed" if j.result.get("rc") is None else f"exit {j.result['rc']}"
            print(f"  {why}: {shell_line(j)}\n    log: {j.log}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
