"""On-disk cache of preprocessed arrays: 2048² radiographs and 2048x1024 photos are decoded once.

The key is a SHA-256 over everything the arrays depend on: the task, the source format, every
source file's path, size and modification time (touching or editing a file changes the key),
the preprocessing parameters, :data:`CODE_VERSION` and the text of the preprocessing module
(so an edited loader can never serve stale arrays).  A hit therefore needs only a directory
walk and ``stat`` calls.

Images are stored as float16 and *every* load -- fresh or cached -- goes through that same
rounding, so the first run and later runs see bit-identical arrays (float16 keeps ~1e-3
resolution in [-1, 1], finer than the 8-bit sources' 2/255 step).

Files are written atomically (``artifacts.atomic_save_npz``) after every case decoded; an
unreadable or mismatching cache file is reported and rebuilt, never trusted.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from gan_seg_aug.artifacts import atomic_save_npz, git_commit

log = logging.getLogger(__name__)

CODE_VERSION = 1  # bump when the meaning of cached arrays changes
ENV_VAR = "GAN_SEG_AUG_CACHE"
REQUIRED = ("images", "labels", "spacing_mm", "case_ids", "groups")


def default_cache_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "gan_seg_aug").expanduser()


def fingerprint(paths) -> list:
    """``[path, size, mtime_ns]`` of each source file (no content read: a hit stays cheap)."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return out


def _code_digest(code_files) -> str:
    h = hashlib.sha256()
    for f in code_files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def cache_key(task: str, fmt: str, files, params: dict, code_files=()) -> str:
    material = {"task": task, "format": fmt, "files": fingerprint(files), "params": params,
                "code_version": CODE_VERSION, "code_sha256": _code_digest(code_files)}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir, task: str, fmt: str, key: str) -> Path:
    return Path(cache_dir) / f"{task}-{fmt}-{key[:20]}.npz"


def _quantise(arrays: dict) -> dict:
    out = dict(arrays)
    out["images"] = np.asarray(arrays["images"]).astype(np.float16)
    return out


def _to_memory(stored: dict) -> dict:
    out = dict(stored)
    out["images"] = stored["images"].astype(np.float32)
    out["case_ids"] = [str(c) for c in stored["case_ids"]]
    groups = [str(g) for g in stored["groups"]]
    out["groups"] = groups or None
    return out


def _read(path: Path, key: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}
    missing = [k for k in REQUIRED + ("meta",) if k not in stored]
    if missing:
        raise ValueError(f"missing arrays {missing}")
    meta = json.loads(str(stored.pop("meta")))
    if meta.get("key") != key:
        raise ValueError("key mismatch")
    n = len(stored["case_ids"])
    if stored["images"].shape[0] != n or stored["labels"].shape[0] != n:
        raise ValueError("array lengths disagree")
    return stored


def cached_arrays(task: str, fmt: str, files, params: dict, build: Callable[[], dict], *, cache_dir=None,
                  code_files=()) -> tuple[dict, dict]:
    """Arrays for these sources: from the cache when the key matches, else ``build()`` and store.

    ``build`` returns ``images`` float32 [N,H,W,C], ``labels`` uint8 [N,H,W], ``spacing_mm``
    [N,2], ``case_ids`` and ``groups`` (a list, empty when there are none) plus optional extra
    arrays.  Returns ``(arrays, info)``; ``info`` = ``{"path", "hit", "key"}``.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    key = cache_key(task, fmt, files, params, code_files)
    path = cache_file(cache_dir, task, fmt, key)
    info = {"path": str(path), "hit": False, "key": key}
    if path.exists():
        try:
            stored = _read(path, key)
            info["hit"] = True
            log.debug(f"cache hit: {path}")
            return _to_memory(stored), info
        except Exception as e:  # any damage means: do not trust it, rebuild
            log.warning(f"cache file {path} is unreadable or stale ({type(e).__name__}: {e}); rebuilding it")
    arrays = build()
    stored = _quantise(arrays)
    stored["case_ids"] = np.array(list(arrays["case_ids"]), dtype=np.str_)
    stored["groups"] = np.array(list(arrays["groups"] or []), dtype=np.str_)
    meta = {"key": key, "task": task, "format": fmt, "params": params, "code_version": CODE_VERSION,
            "n_files": len(files), "git_commit": git_commit(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "numpy": np.__version__}
    try:
        atomic_save_npz(path, meta=np.array(json.dumps(meta)), **stored)
    except OSError as e:  # a read-only cache must not stop a run
        log.warning(f"could not write cache file {path} ({e}); continuing without cache")
        info["path"] = None
    else:
        log.debug(f"wrote cache file {path}")
    return _to_memory(stored), info
