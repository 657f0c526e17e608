"""Which runs make which rows of the paper's Tables I-IV: the run catalogue, as data.

Paper §V-A (thesis §5.1.2): "We evaluated different combinations of standard data augmentation on
one fold [...] we fixed elastic deformation at 10 pixels for each control point" (Table I, SCR,
16 real pairs, validation Dice); "we report performance as the average Dice score and Hausdorff
distance over all folds" (Table II: 3 folds, one GAN per fold).  §V-B (thesis §5.2.2): Table III
compares augmentation settings on the validation set (8 real pairs, mIoU); Table IV is the single
Cityscapes fold, with mIoU "excluding the 'Human' and 'Object' categories" as a second column.

Nothing here touches the disk: :mod:`.tables` finds the finished runs and assembles the tables.
"""
from __future__ import annotations

from dataclasses import dataclass

from gan_seg_aug.augment.settings import AUG_PRESETS, AugParams, is_preset
from gan_seg_aug.layout import unet_run_name

TABLES = ("I", "II", "III", "IV")  # the paper's
# The low-data ladder (not in the paper): SCR fold 1 trained on nested subsets of its training cases,
# each subset with its own GAN, the same validation and test sets.  None = all training cases.
LADDER = "ladder"
LADDER_CASES = (9, 25, 62, None)
LADDER_RUNS = ((16, 0, False), (16, 0, True), (8, 8, False))  # 16-0-NoAug, 16-0-Aug, 8-8-NoAug
SCR_FOLDS = (1, 2, 3)
TABLE_TASK = {"I": "scr_lung", "II": "scr_lung", "III": "cityscapes", "IV": "cityscapes", LADDER: "scr_lung"}


@dataclass(frozen=True)
class RunSpec:
    """One U-Net run = one call of ``experiments/<task>.py``.  ``aug=None`` is no augmentation."""

    task: str
    fold: int
    n_real: int
    n_generated: int
    aug: AugParams | None = None
    train_cases: int | None = None  # a nested training subset (the ladder); None = the whole training set

    @property
    def mix(self) -> str:
        return f"{self.n_real}-{self.n_generated}"

    @property
    def needs_gan(self) -> bool:
        return self.n_generated > 0

    @property
    def is_preset(self) -> bool:
        return is_preset(self.aug, self.task)

    @property
    def network_id(self) -> str:
        return f"{self.mix}-{'Aug' if self.aug is not None else 'NoAug'}"

    @property
    def run_name(self) -> str:
        """``16-0-Aug`` for the paper's preset, ``16-0-NoAug`` without, else the spelled-out setting."""
        return unet_run_name(self.task, self.n_real, self.n_generated, self.aug)


@dataclass(frozen=True)
class TableRow:
    """One row of a table: its key (shared with ``results/paper/table_*.csv``) and its runs."""

    table: str
    row_id: str
    runs: tuple[RunSpec, ...]  # one per fold for Table II, else exactly one
    aug: AugParams | None = None


# Paper Table I rows in order: (intensity shift, intensity scaling, translation px, elastic px).
TABLE_I_SETTINGS = ((0, 0, 0, 0), (0, 0, 0, 10), (0, 0, 10, 10), (0, 0.05, 0, 10), (0, 0.05, 10, 10),
                    (0.05, 0, 0, 10), (0.05, 0, 10, 10), (0.05, 0.05, 0, 10), (0.05, 0.05, 10, 10))
# Paper Table III rows in order: (intensity shift, intensity scaling, translation px, horizontal flip).
TABLE_III_SETTINGS = ((0.10, 0.10, 10, False), (0.05, 0.05, 5, False), (0, 0, 0, False),
                      (0.05, 0.05, 0, True), (0, 0, 0, True))
TABLE_II_MIXES = ((16, 0), (8, 8), (0, 16))
TABLE_IV_MIXES = ((8, 0), (4, 4), (0, 8))


def setting_row_id(a: AugParams, task: str) -> str:
    """Row key of Tables I / III, e.g. ``sh0.05_sc0.05_tr10_el10`` or ``sh0_sc0_tr0_flip1``."""
    last = f"el{a.elastic_std:g}" if task == "scr_lung" else f"flip{int(a.flip)}"
    return f"sh{a.shift_std:g}_sc{a.scale_std:g}_tr{a.translate_std:g}_{last}"


def _as_aug(a: AugParams) -> AugParams | None:
    return None if a.is_identity else a  # the all-zero row is the plain no-augmentation run


def ladder_row_id(network_id: str, train_cases) -> str:
    """The ladder row of ``network_id`` trained on ``train_cases`` cases (None: all of them).

    >>> ladder_row_id("8-8-NoAug", 9), ladder_row_id("16-0-Aug", None)
    ('8-8-NoAug_train9', '16-0-Aug_trainall')
    """
    return f"{network_id}_train{train_cases or 'all'}"


def table_rows(table: str, folds=SCR_FOLDS) -> list[TableRow]:
    """The rows of a paper table and the runs each needs.

    Table I's first and last rows are the very runs 16-0-NoAug / 16-0-Aug of fold 1 in Table II
    (same configuration), and Table III's no-flip and flip-only rows are 8-0-NoAug / 8-0-Aug of
    Table IV, so those are run once and shared.

    >>> [r.row_id for r in table_rows("II", folds=(1,))][:2]
    ['16-0-Aug', '16-0-NoAug']
    >>> table_rows("I")[-1].runs[0].run_name
    '16-0-Aug'
    """
    if table in ("I", "III"):
        task, mix = TABLE_TASK[table], ((16, 0) if table == "I" else (8, 0))
        settings = ([AugParams(shift_std=sh, scale_std=sc, translate_std=tr, elastic_std=el)
                     for sh, sc, tr, el in TABLE_I_SETTINGS] if table == "I"
                    else [AugParams(shift_std=sh, scale_std=sc, translate_std=tr, flip=fl)
                          for sh, sc, tr, fl in TABLE_III_SETTINGS])
        return [TableRow(table, setting_row_id(a, task), (RunSpec(task, 1, *mix, _as_aug(a)),), a) for a in settings]
    if table in ("II", "IV"):
        task = TABLE_TASK[table]
        mixes, fold_list = (TABLE_II_MIXES, tuple(folds)) if table == "II" else (TABLE_IV_MIXES, (1,))
        bad = [f for f in fold_list if f not in SCR_FOLDS]
        if bad or not fold_list:
            raise ValueError(f"--folds {list(folds)}: expected a non-empty subset of {list(SCR_FOLDS)}")
        out = []
        for r, g in mixes:
            for aug in (AUG_PRESETS[task], None):
                runs = tuple(RunSpec(task, f, r, g, aug) for f in fold_list)
                out.append(TableRow(table, runs[0].network_id, runs))
        return out
    if table == LADDER:
        return [TableRow(LADDER, ladder_row_id(RunSpec("scr_lung", 1, r, g, AUG_PRESETS["scr_lung"] if a else None)
                                               .network_id, n),
                         (RunSpec("scr_lung", 1, r, g, AUG_PRESETS["scr_lung"] if a else None, train_cases=n),))
                for n in LADDER_CASES for r, g, a in LADDER_RUNS]
    raise ValueError(f"unknown --table {table!r}: expected one of {', '.join(TABLES)}, {LADDER} or all")


def table_runs(tables, folds=SCR_FOLDS) -> list[RunSpec]:
    """All distinct runs of the given tables, in table order (shared runs once)."""
    return list(dict.fromkeys(s for t in tables for row in table_rows(t, folds) for s in row.runs))


def select_rows(rows: list[TableRow], only=None) -> list[TableRow]:
    """Rows whose id or any run name is in ``only`` (all rows when ``only`` is empty)."""
    if not only:
        return rows
    wanted = set(only)
    return [r for r in rows if r.row_id in wanted or any(s.run_name in wanted for s in r.runs)]
