"""U-Net run checkpoints: ``checkpoints/it-N/`` (weights, Adam state, best weights so far,
early-stopping state and history) behind a ``checkpoint.json`` pointer switched atomically, so an
interrupted run resumes at its last validation (thesis §4.2's early-stopping rule continues).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_save_npz, atomic_write_json, read_json


def save_weights(model, path: Path):
    """``model.save_weights`` to a temporary name in the same directory, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keras needs the .weights.h5 suffix
    model.save_weights(str(tmp))
    os.replace(tmp, path)


def save_checkpoint(out: Path, model, optimizer, it, es, history, best_weights):
    """Write ``checkpoints/it-N/`` completely, then switch ``checkpoint.json`` to it (atomic rename),
    then delete older checkpoints: whatever the moment of an interruption, the pointer names a
    complete, self-consistent checkpoint."""
    name = f"it-{it:07d}"
    d = out / "checkpoints" / name
    shutil.rmtree(d, ignore_errors=True)  # a half-written one from an interrupted save
    d.mkdir(parents=True)
    save_weights(model, d / "model.weights.h5")
    atomic_save_npz(d / "optimizer.npz", **{f"v{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    atomic_save_npz(d / "best.npz", **{f"w{i}": w for i, w in enumerate(best_weights or [])})
    atomic_write_json(d / "state.json", {"iteration": it, "early_stopping": es.state_dict(), "history": history})
    atomic_write_json(out / "checkpoint.json", {"dir": f"checkpoints/{name}", "iteration": it})
    for old in (out / "checkpoints").iterdir():
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out: Path, model, optimizer):
    """Restore model and optimizer in place; return the rest of the state, or None without a checkpoint."""
    pointer = out / "checkpoint.json"
    if not pointer.exists():
        return None
    d = out / read_json(pointer)["dir"]
    try:
        state = read_json(d / "state.json")
        model.load_weights(str(d / "model.weights.h5"))
        with np.load(d / "optimizer.npz") as z:
            saved = [z[f"v{i}"] for i in range(len(z.files))]
        with np.load(d / "best.npz") as z:
            best = [z[f"w{i}"] for i in range(len(z.files))] or None
    except (FileNotFoundError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"{d}: checkpoint unreadable ({e}); delete {pointer} to restart this run from scratch") from e
    if len(saved) != len(optimizer.variables) or any(s.shape != tuple(v.shape) for s, v in
                                                     zip(saved, optimizer.variables)):
        raise ValueError(f"{d}/optimizer.npz does not match this model's optimizer; delete {pointer} to restart")
    for v, s in zip(optimizer.variables, saved):
        v.assign(s)
    return {"iteration": int(state["iteration"]), "early_stopping": state["early_stopping"],
            "history": state["history"], "best_weights": best}
