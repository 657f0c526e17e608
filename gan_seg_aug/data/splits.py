"""The paper's data splits, made once with a fixed seed and saved as JSON (paper §V-A, §V-B).

SCR (§V-A): "We shuffle the dataset randomly and split it into 3 folds, each containing 135
training images, 30 validation images and 82/83 test images, chosen such that all images are
contained exactly once in the set of test images."  247 = 83 + 82 + 82 test; the 30 validation
cases are drawn from the rest, so the fold with 83 test cases has 134 training cases
(135 + 30 + 83 = 248 > 247; see docs/decisions.md).

Cityscapes (§V-B): test = all 500 official val images; validation = 400 images drawn at random
from the 2,975 official train images; train = the other 2,575.  One fold.

With fewer cases (``--allow-partial``) the same procedure keeps the proportions
(validation 30/247 of the cases, resp. 400/2975 of the official train images).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_write_json, read_json

SPLIT_SEED = 20180314  # any fixed number; the date the paper's code footnote was accessed
SCR_N_FOLDS = 3
SCR_N_CASES, SCR_N_VAL = 247, 30
CITY_N_TRAIN, CITY_N_VAL = 2975, 400
DEFAULT_SPLIT_DIR = Path(__file__).resolve().parents[2] / "results" / "splits"


def default_split_dir() -> Path:
    """``results/splits`` in the checkout; ``$GAN_SEG_AUG_SPLIT_DIR`` overrides it (tests use a tmp dir)."""
    import os

    return Path(os.environ.get("GAN_SEG_AUG_SPLIT_DIR") or DEFAULT_SPLIT_DIR)


def _ids_digest(case_ids) -> str:
    return hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()[:16]


def make_split(task: str, case_ids, groups=None, *, seed: int = SPLIT_SEED) -> dict:
    """Deterministic split of ``case_ids``; identical on every machine for the same ids.

    >>> s = make_split("scr_lung", [f"C{i:03d}" for i in range(247)])
    >>> [(len(f["train"]), len(f["val"]), len(f["test"])) for f in s["folds"]]
    [(134, 30, 83), (135, 30, 82), (135, 30, 82)]
    """
    ids = sorted(case_ids)
    if task == "scr_lung":
        folds = _scr_folds(ids, seed)
    elif task == "cityscapes":
        if groups is None:
            raise ValueError("cityscapes split needs the official split ('train'/'val') of every case")
        folds = _cityscapes_folds(ids, dict(zip(case_ids, groups)), seed)
    else:
        raise ValueError(f"unknown task {task!r}")
    return {"task": task, "seed": seed, "n_cases": len(ids), "case_ids_sha256_16": _ids_digest(ids),
            "folds": folds}


def _scr_folds(ids, seed):
    n = len(ids)
    if n < SCR_N_FOLDS * 3:
        raise ValueError(f"SCR split needs at least {SCR_N_FOLDS * 3} cases, found {n}")
    perm = list(np.random.default_rng(seed).permutation(ids))
    chunks = np.array_split(np.arange(n), SCR_N_FOLDS)
    n_val = max(1, round(SCR_N_VAL * n / SCR_N_CASES))
    folds = []
    for k, chunk in enumerate(chunks):
        test = [perm[i] for i in chunk]
        test_set = set(test)
        rest = [c for c in perm if c not in test_set]
        rest = list(np.random.default_rng([seed, k + 1]).permutation(rest))
        folds.append({"fold": k + 1, "train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]),
                      "test": sorted(test)})
    return folds


def _cityscapes_folds(ids, group_of, seed):
    bad = sorted({g for g in group_of.values() if g not in ("train", "val")})
    if bad:
        raise ValueError(f"cityscapes groups must be 'train' or 'val', found {bad}")
    train_pool = [c for c in ids if group_of[c] == "train"]
    test = [c for c in ids if group_of[c] == "val"]
    if not train_pool or not test:
        raise ValueError(f"cityscapes split needs official train and val images, found "
                         f"{len(train_pool)} train and {len(test)} val")
    n_val = max(1, round(CITY_N_VAL * len(train_pool) / CITY_N_TRAIN))
    perm = list(np.random.default_rng(seed).permutation(train_pool))
    return [{"fold": 1, "train": sorted(perm[n_val:]), "val": sorted(perm[:n_val]), "test": test}]


def split_name(task: str, source: str, case_ids, full: bool) -> str:
    """``scr_lung.json`` for the full real set; synthetic sets and subsets (fewer cases than the
    paper's: ``--allow-partial`` data or a profile's case limit) are marked in the name.

    >>> split_name("scr_lung", "real", ["A", "B"], full=False)
    'scr_lung_subset2_23519a43c66b4c34.json'
    """
    stem = task if source == "real" else f"{task}_{source}"
    return f"{stem}.json" if full else f"{stem}_subset{len(case_ids)}_{_ids_digest(case_ids)}.json"


def load_or_make_split(task: str, case_ids, groups=None, *, source: str = "real", full: bool = True,
                       split_dir=None, seed: int = SPLIT_SEED) -> tuple[dict, Path]:
    """Read the saved split, or make it and save it (atomically) on first use.

    A saved split whose case ids differ from the data at hand is an error, not silently replaced:
    a changed split would make results incomparable.
    """
    path = Path(split_dir or default_split_dir()) / split_name(task, source, case_ids, full)
    if path.exists():
        split = read_json(path)
        if split.get("case_ids_sha256_16") != _ids_digest(case_ids) or split.get("task") != task:
            raise ValueError(f"{path}: saved split was made for other cases ({split.get('n_cases')} cases) than "
                             f"the {len(case_ids)} found now; move it away to make a new one")
        return split, path
    split = make_split(task, case_ids, groups, seed=seed)
    split["source"] = source
    atomic_write_json(path, split)
    return split, path


def fold_of(split: dict, fold: int) -> dict:
    n = len(split["folds"])
    if not 1 <= fold <= n:
        raise ValueError(f"--fold {fold} out of range: this split has folds 1..{n}")
    return split["folds"][fold - 1]


def training_subset(split: dict, split_path: Path, fold: int, n: int, *, seed: int = SPLIT_SEED) -> tuple[list, Path]:
    """The first ``n`` training cases of ``fold`` in one fixed random order: subsets of one fold are
    nested (the 9 cases of ``n=9`` are among the 25 of ``n=25``), the fold's validation and test sets
    are untouched.  Saved once beside the split (``<split>_fold<k>_train<n>.json``) and reused, like it.

    >>> split = {"task": "t", "folds": [{"train": list("abcdefghij"), "val": [], "test": []}]}
    >>> import tempfile; d = Path(tempfile.mkdtemp()); split_path = d / "t.json"
    >>> small, _ = training_subset(split, split_path, 1, 3); large, _ = training_subset(split, split_path, 1, 6)
    >>> set(small) < set(large), len(large)
    (True, 6)
    """
    train = sorted(fold_of(split, fold)["train"])
    if not 1 <= n <= len(train):
        raise ValueError(f"--train-cases {n}: fold {fold} has {len(train)} training cases; expected 1..{len(train)}")
    path = Path(split_path).with_name(f"{Path(split_path).stem}_fold{fold}_train{n}.json")
    order = [train[i] for i in np.random.default_rng(seed).permutation(len(train))]
    record = {"parent_split": Path(split_path).name, "fold": fold, "n": n, "seed": seed, "train": sorted(order[:n])}
    if path.exists():
        saved = read_json(path)
        if saved.get("train") != record["train"]:
            raise ValueError(f"{path}: saved training subset differs from the one this split gives; move it away")
        return saved["train"], path
    atomic_write_json(path, record)
    return record["train"], path
