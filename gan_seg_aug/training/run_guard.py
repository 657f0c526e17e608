"""What both trainers do with a run directory before and after training: one owner for the rules.

* A directory belongs to one run.  Resuming or reusing it with other settings would mix two
  experiments in one result, so :func:`refuse_other_run` stops with the settings that differ.
* Under a multi-worker strategy only the chief writes the run directory; the other workers read
  it and write to a scratch directory (:func:`writer_dir`), removed when they finish.
* A run is finished when its marker file exists (``layout.GAN_DONE`` / ``layout.UNET_DONE`` /
  ``train_done.json``); markers are written last and atomically.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path


def _jsonable(obj):
    """``obj`` as it reads back from JSON (tuples become lists), for comparing with a saved record."""
    return json.loads(json.dumps(obj))


def differing_settings(saved: dict, wanted: dict, *, legacy: dict | None = None) -> list[str]:
    """``"key: saved -> wanted"`` for every key of ``wanted`` whose saved value differs.

    ``legacy`` gives the value a key had before it was recorded (runs written by older code).

    >>> differing_settings({"seed": 0, "mix": "8-8"}, {"seed": 1, "mix": "8-8"})
    ['seed: 0 -> 1']
    >>> differing_settings({}, {"critic_norm": "batch"}, legacy={"critic_norm": "batch"})
    []
    """
    legacy, saved, wanted = legacy or {}, _jsonable(saved), _jsonable(wanted)
    return [f"{k}: {saved.get(k, legacy.get(k))!r} -> {v!r}" for k, v in wanted.items()
            if saved.get(k, legacy.get(k)) != v]


def refuse_other_run(path, saved: dict, wanted: dict, *, what: str, legacy: dict | None = None) -> None:
    """Raise ``ValueError`` naming ``path`` when it holds a ``what`` run with other settings."""
    differ = differing_settings(saved, wanted, legacy=legacy)
    if differ:
        raise ValueError(f"{path} holds a {what} run with other settings ({'; '.join(differ)}); refusing to mix "
                         f"runs: choose another --out / --runs-dir or delete that directory")


def writer_dir(out_dir: Path, chief: bool) -> Path:
    """Where this process writes: the run directory on the chief, a scratch directory elsewhere."""
    return Path(out_dir) if chief else Path(tempfile.mkdtemp(prefix="gan_seg_aug_worker_"))


def release(write_dir: Path, out_dir: Path) -> None:
    """A worker's scratch directory is removed when it finishes; the chief's run directory stays."""
    if Path(write_dir) != Path(out_dir):
        shutil.rmtree(write_dir, ignore_errors=True)
