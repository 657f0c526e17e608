"""``python -m gan_seg_aug.data describe --task scr_lung --data-dir DIR [--json] [--allow-partial] [--out PNG]``

Loads a task exactly as training does (``load_task`` + ``task_split``) and reports what came out.
Without ``--data-dir`` it describes the embedded synthetic set.  ``--json`` prints one JSON object
on stdout (notices go to stderr).  Exit status 2 on bad input, with the reason on stderr.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json
import sys

from gan_seg_aug.cli.log_setup import add_verbosity_args, configure, verbosity
from gan_seg_aug.cli.arg_types import directory_or_new
from gan_seg_aug.data.loaders import TASKS, DataError, load_task, task_split
from gan_seg_aug.layout import default_runs_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_seg_aug.data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="counts, split, intensities, mask statistics, contact sheet")
    d.add_argument("--task", required=True, choices=TASKS)
    d.add_argument("--data-dir", default=None, help="real data (omit: the synthetic stand-in)")
    d.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    d.add_argument("--allow-partial", action="store_true", help="accept fewer cases than the paper's")
    d.add_argument("--out", default=None, help="write a contact sheet with mask overlays to this PNG")
    d.add_argument("--cache-dir", default=None, help="preprocessed-array cache (default $GAN_SEG_AUG_CACHE "
                                                     "or ~/.cache/gan_seg_aug)")
    d.add_argument("--split-dir", default=None,
                   help="where splits are saved (default: results/splits for the full real set, <runs-dir>/splits "
                        "otherwise)")
    d.add_argument("--runs-dir", type=directory_or_new, default=str(default_runs_dir()),
                   help="root of the run directories (default %(default)s)")
    d.add_argument("--max-cases", type=int, default=0, help="use only this many cases (0 = all)")
    add_verbosity_args(d)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    configure(verbosity(args), stream=sys.stderr if args.json else None)  # --json: stdout is the JSON alone
    from gan_seg_aug.artifacts import provenance
    from gan_seg_aug.data.describe import contact_sheet, format_text, summarise, write_png

    try:
        data = load_task(args.task, args.data_dir, allow_partial=args.allow_partial, cache_dir=args.cache_dir,
                         max_cases=args.max_cases)
        split, split_path = task_split(data, args.split_dir, scratch_dir=Path(args.runs_dir) / "splits")
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = summarise(data, split, split_path)
    if args.out:
        meta = provenance(command="describe", task=args.task, dataset=data.source, n_cases=len(data),
                          data_dir=args.data_dir)
        summary["contact_sheet"] = str(write_png(args.out, contact_sheet(data), meta))
    if args.json:
        summary["provenance"] = provenance(command="describe", dataset=data.source)
        print(json.dumps(summary, default=str))
    else:
        print(format_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
