"""Checkpoints of both trainers, one format: ``<dir>/ckpt_<iteration>.npz``, written atomically.

Each checkpoint holds named groups of arrays (``<group>/<index>``), the iteration, and a JSON
``meta`` entry for the rest of the state; the newest ``KEEP`` are kept, and restoring takes the
newest readable one and assigns nothing unless every group matches the model in count and shape.

* WGAN-GP (thesis Algorithm 4): both networks, both Adam optimisers and the metric trackers.  The
  noise of iteration ``i`` is a function of ``(seed, i)`` (``wgan_gp.draw_noise``), so the iteration
  number is all the random state a resumed run needs.
* U-Net (thesis §4.2): the network, its Adam state, the best weights so far, and in ``meta`` the
  early-stopping state and the history, so the early-stopping rule continues exactly.
"""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_save_npz

KEEP = 2
log = logging.getLogger(__name__)


def write_checkpoint(ckpt_dir: Path, iteration: int, groups: dict, meta: dict | None = None) -> Path:
    """Save ``groups`` ({name: list of variables or arrays}) and ``meta`` as the iteration's checkpoint."""
    arrays = {f"{g}/{i:04d}": np.asarray(v.numpy() if hasattr(v, "numpy") else v)
              for g, vs in groups.items() for i, v in enumerate(vs)}
    arrays["iteration"] = np.int64(iteration)
    if meta is not None:  # the GAN has no state beyond arrays: its files stay as they always were
        arrays["meta"] = np.array(json.dumps(meta))
    path = atomic_save_npz(Path(ckpt_dir) / f"ckpt_{iteration:06d}.npz", **arrays)
    for old in sorted(Path(ckpt_dir).glob("ckpt_*.npz"))[:-KEEP]:
        old.unlink()
    return path


def read_latest(ckpt_dir: Path, what: str = "run"):
    """``(path, iteration, {group: [arrays]}, meta)`` of the newest readable checkpoint, or None."""
    for path in sorted(Path(ckpt_dir).glob("ckpt_*.npz"), reverse=True):
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            log.warning(f"[{what}] skipping unreadable checkpoint {path}: {e}")
            continue
        groups: dict[str, list] = {}
        for key in sorted(k for k in arrays if "/" in k):
            groups.setdefault(key.split("/")[0], []).append(arrays[key])
        meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}  # GAN checkpoints before meta existed
        return path, int(arrays["iteration"]), groups, meta
    return None


def assign_groups(path: Path, saved: dict, targets: dict) -> None:
    """Assign ``saved`` arrays to ``targets`` variables, group by group, after checking all of them."""
    pairs = []
    for group, vs in targets.items():
        arrays = saved.get(group, [])
        if len(arrays) != len(vs):
            raise ValueError(f"{path}: {group} has {len(arrays)} saved variables, the model {len(vs)}")
        for i, (v, a) in enumerate(zip(vs, arrays)):
            if tuple(a.shape) != tuple(v.shape):
                raise ValueError(f"{path}: {group} variable {i} ({getattr(v, 'path', '')}) has shape {a.shape}, "
                                 f"the model {tuple(v.shape)}")
            pairs.append((v, a))
    for v, a in pairs:  # only once everything matched: never a half-restored model
        v.assign(a)


# ---- the WGAN-GP ------------------------------------------------------------------------------------

def _gan_groups(model) -> dict:
    return {"generator": model.generator.variables, "critic": model.critic.variables,
            "g_optimizer": model.g_optimizer.variables, "d_optimizer": model.d_optimizer.variables,
            "metrics": [v for m in model.metrics for v in m.variables]}


def save_gan_checkpoint(model, ckpt_dir: Path, iteration: int) -> Path:
    return write_checkpoint(ckpt_dir, iteration, _gan_groups(model))


def restore_gan(model, ckpt_dir: Path) -> int:
    """Load the newest readable checkpoint into ``model``; returns its iteration (0 if none)."""
    found = read_latest(ckpt_dir, "gan")
    if found is None:
        return 0
    path, iteration, saved, _ = found
    assign_groups(path, saved, _gan_groups(model))
    model.iteration.assign(iteration)  # selects the noise of the next iteration
    return iteration


# ---- the U-Net --------------------------------------------------------------------------------------

def save_weights(model, path: Path):
    """``model.save_weights`` to a temporary name in the same directory, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keras needs the .weights.h5 suffix
    model.save_weights(str(tmp))
    os.replace(tmp, path)


def save_unet_checkpoint(out: Path, model, optimizer, it, es, history, best_weights) -> Path:
    groups = {"model": model.weights, "optimizer": optimizer.variables, "best": list(best_weights or [])}
    return write_checkpoint(Path(out) / "checkpoints", it, groups,
                            {"early_stopping": es.state_dict(), "history": history,
                             "has_best": best_weights is not None})


def restore_unet(out: Path, model, optimizer):
    """Restore model and optimizer in place; return the rest of the state, or None without a checkpoint."""
    found = read_latest(Path(out) / "checkpoints", "unet")
    if found is None:
        return None
    path, iteration, saved, meta = found
    assign_groups(path, saved, {"model": model.weights, "optimizer": optimizer.variables})
    best = saved.get("best") if meta.get("has_best") else None
    return {"iteration": iteration, "early_stopping": meta["early_stopping"], "history": meta["history"],
            "best_weights": best}
