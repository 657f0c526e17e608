"""Entry point for every data source: ``load_task`` and ``task_split``.

``load_task(task, data_dir)`` returns a :class:`TaskData` at the paper's training resolution
(paper §V-A: SCR "downsampled to a resolution of [256 x 256]"; §V-B: Cityscapes "[256 x 128 x 3]")
from one of:

* no ``data_dir``: the embedded synthetic stand-in (``data/synthetic.py``), with a one-line
  notice, so every command runs on a fresh clone;
* JSRT radiographs + SCR masks (``data/scr.py``);
* Cityscapes, official layout or the pix2pix variant (``data/cityscapes.py``);
* any other task, given as its :class:`~gan_seg_aug.tasks.TaskSpec`: a folder of the user's own images
  (``data_dir``) and masks (``masks_dir``), ``data/folder.py``.

Real sets are checked against the paper's counts (§V-A: 247 SCR images; §V-B: 2975 training +
500 validation Cityscapes images).  A different count is an error unless ``allow_partial``:
then the split keeps the paper's proportions (``splits.py``) and a notice says the numbers are
not comparable to the paper.

Every bad input raises :class:`DataError` naming the file or flag and what was expected, before
anything is written (the cache is written only after every case decoded).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from gan_seg_aug.data.base import TaskData
from gan_seg_aug.layout import default_runs_dir
from gan_seg_aug.data.splits import default_split_dir, load_or_make_split

log = logging.getLogger(__name__)

TASKS = ("scr_lung", "cityscapes")
# Paper §V-A (SCR: 247 images) and §V-B (Cityscapes: 2975 train + 500 val, fine annotations).
PAPER_COUNTS = {"scr_lung": {"all": 247}, "cityscapes": {"train": 2975, "val": 500}}
SYNTHETIC_COUNTS = {"scr_lung": 247, "cityscapes": 347}  # the synthetic generators' default sizes


class DataError(ValueError):
    """A data directory or file is not what the paper's datasets look like (message says what)."""


def _counts(task: str, groups) -> dict:
    if task == "scr_lung":
        return {"all": len(groups)}
    return {g: sum(1 for x in groups if x == g) for g in PAPER_COUNTS[task]}


def _fmt_counts(counts: dict) -> str:
    return " + ".join(f"{n} {g}" if g != "all" else str(n) for g, n in counts.items())


def check_paper_count(task: str, groups, *, allow_partial: bool, where) -> bool:
    """Compare the number of cases (per official split for Cityscapes) with the paper's.

    ``groups`` holds one entry per case (its official split; anything for SCR).  Returns True
    when the counts are the paper's.  A difference is a :class:`DataError` unless
    ``allow_partial``, in which case a notice is logged and False returned.
    """
    found, expected = _counts(task, groups), PAPER_COUNTS[task]
    if found == expected:
        return True
    msg = (f"{where}: found {_fmt_counts(found)} {task} cases, expected the paper's {_fmt_counts(expected)}")
    if not allow_partial:
        raise DataError(msg + "; pass --allow-partial to use a subset anyway")
    log.info(f"note: {msg}; --allow-partial: the split keeps the paper's proportions, "
             "results are NOT comparable to the paper")
    return False


def load_task(task, data_dir=None, *, masks_dir=None, allow_partial: bool = False, cache_dir=None,
              max_cases: int = 0) -> TaskData:
    """Load ``task`` ("scr_lung" | "cityscapes") from ``data_dir``, or the synthetic set when None; a task
    given as a TaskSpec (own data) from its images folder ``data_dir`` and masks folder ``masks_dir``.

    ``max_cases`` > 0 keeps a deterministic subset (smoke runs): the synthetic generator makes
    only that many cases; real data is loaded (and cached) in full, then ``TaskData.limited``.
    ``cache_dir`` defaults to ``$GAN_SEG_AUG_CACHE`` or ``~/.cache/gan_seg_aug``.
    """
    if isinstance(task, str) and task not in TASKS:
        raise DataError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if not isinstance(max_cases, int) or max_cases < 0:
        raise DataError(f"--max-cases {max_cases!r}: expected an integer >= 0 (0 = all cases)")
    if not isinstance(task, str):  # a task described by its spec: the user's own folder of images and masks
        from gan_seg_aug.data import folder
        from gan_seg_aug.tasks import task_name

        if data_dir is None or masks_dir is None:
            raise DataError(f"task {task_name(task)} is a folder of images and masks: load it with both folders "
                            f"(data_dir = the images, masks_dir = the masks; experiments/own_data.py --images --masks)")
        return folder.load(task, data_dir, masks_dir, cache_dir=cache_dir).limited(max_cases)
    if data_dir is None:
        return _synthetic(task, max_cases)
    data_dir = Path(data_dir).expanduser()
    if not data_dir.exists():
        raise DataError(f"--data-dir {data_dir}: directory not found")
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir}: not a directory")
    if task == "scr_lung":
        from gan_seg_aug.data import scr

        data = scr.load(data_dir, allow_partial=allow_partial, cache_dir=cache_dir)
    else:
        from gan_seg_aug.data import cityscapes

        data = cityscapes.load(data_dir, allow_partial=allow_partial, cache_dir=cache_dir)
    return data.limited(max_cases)


def _synthetic(task: str, max_cases: int) -> TaskData:
    from gan_seg_aug.data import synthetic

    make = synthetic.make_scr_lung if task == "scr_lung" else synthetic.make_cityscapes
    data = make(n_cases=max_cases) if max_cases else make()
    log.info(f"note: no --data-dir given: using the embedded SYNTHETIC {task} stand-in ({len(data)} cases); "
             "numbers are NOT comparable to the paper (see docs/data.md for the real datasets)")
    return data


def is_complete(data: TaskData) -> bool:
    """True for a real dataset with exactly the paper's case counts, the whole synthetic set, or every pair
    of an own-data folder (a profile's case limit makes a subset)."""
    if data.source == "folder":
        return len(data) == data.origin.get("n_cases", len(data))
    if data.source != "real":
        return len(data) == SYNTHETIC_COUNTS[data.task]
    groups = data.groups if data.groups is not None else ["all"] * len(data)
    return _counts(data.task, groups) == PAPER_COUNTS[data.task]


def task_split(data: TaskData, split_dir=None, *, scratch_dir=None) -> tuple[dict, Path]:
    """The paper's split of ``data`` (made once, saved as JSON; see ``splits.py``) and its path.

    The complete real set uses ``<task>.json`` in ``results/splits`` (committed: the split made once);
    subsets and the synthetic set get their own files (``splits.split_name``) in ``scratch_dir``
    (the commands pass ``<runs-dir>/splits``), so they never land in the checkout and can never
    overwrite or pass for the paper's.  ``split_dir`` (or ``$GAN_SEG_AUG_SPLIT_DIR``) overrides both.
    """
    full = is_complete(data)
    if split_dir is None and not os.environ.get("GAN_SEG_AUG_SPLIT_DIR") and not (full and data.source == "real"):
        split_dir = scratch_dir if scratch_dir is not None else default_runs_dir() / "splits"
    if data.source == "folder":
        return _folder_split(data, Path(split_dir or default_split_dir()), full)
    return load_or_make_split(data.task, data.case_ids, data.groups, source=data.source, full=full,
                              split_dir=split_dir)


def _folder_split(data: TaskData, split_dir: Path, full: bool) -> tuple[dict, Path]:
    """An own-data folder gets SCR's split (paper §V-A: 3 folds, every case tested once, validation 30/247 of
    the cases), made once and saved as ``<name>_folder[_subset...].json`` like the paper's splits."""
    from gan_seg_aug.artifacts import atomic_write_json, read_json
    from gan_seg_aug.data.splits import make_split, split_name
    from gan_seg_aug.tasks import task_name

    name = task_name(data.task)
    # SCR's procedure, recorded under the folder's name
    split = {**make_split("scr_lung", data.case_ids), "task": name, "source": data.source}
    path = split_dir / split_name(name, data.source, data.case_ids, full)
    if path.exists():
        saved = read_json(path)
        if saved.get("case_ids_sha256_16") != split["case_ids_sha256_16"] or saved.get("task") != name:
            raise DataError(f"{path}: saved split was made for other cases ({saved.get('n_cases')} cases) than the "
                            f"{len(data)} pairs found now; move it away to make a new one, or give another --name")
        return saved, path
    atomic_write_json(path, split)
    return split, path
