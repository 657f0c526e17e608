"""The WGAN-GP's checkpoints: every variable of both networks, both Adam optimisers and the metric
trackers in one ``.npz`` (written atomically), the last ``KEEP_CHECKPOINTS`` kept.

The noise of iteration ``i`` is a function of ``(seed, i)`` (``gan.draw_noise``), so the iteration
number is all the random state a resumed run needs (thesis Algorithm 4 is then continued exactly).
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from gan_seg_aug.artifacts import atomic_save_npz

KEEP_CHECKPOINTS = 2

log = logging.getLogger(__name__)


def _state(model) -> dict:
    return {"generator": model.generator.variables, "critic": model.critic.variables,
            "g_optimizer": model.g_optimizer.variables, "d_optimizer": model.d_optimizer.variables,
            "metrics": [v for m in model.metrics for v in m.variables]}


def save_checkpoint(model, ckpt_dir: Path, iteration: int) -> Path:
    arrays = {f"{group}/{i:04d}": np.asarray(v.numpy()) for group, vs in _state(model).items()
              for i, v in enumerate(vs)}
    arrays["iteration"] = np.int64(iteration)
    path = atomic_save_npz(ckpt_dir / f"ckpt_{iteration:06d}.npz", **arrays)
    for old in sorted(ckpt_dir.glob("ckpt_*.npz"))[:-KEEP_CHECKPOINTS]:
        old.unlink()
    return path


def restore_latest(model, ckpt_dir: Path) -> int:
    """Load the newest readable checkpoint into ``model``; returns its iteration (0 if none)."""
    for path in sorted(ckpt_dir.glob("ckpt_*.npz"), reverse=True):
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            log.warning(f"[gan] skipping unreadable checkpoint {path}: {e}")
            continue
        pairs = []
        for group, vs in _state(model).items():
            n_saved = sum(k.startswith(group + "/") for k in arrays)
            if n_saved != len(vs):
                raise ValueError(f"{path}: {group} has {n_saved} saved variables, the model {len(vs)}")
            for i, v in enumerate(vs):
                a = arrays[f"{group}/{i:04d}"]
                if tuple(a.shape) != tuple(v.shape):
                    raise ValueError(f"{path}: {group} variable {i} ({v.path}) has shape {a.shape}, "
                                     f"the model {tuple(v.shape)}")
                pairs.append((v, a))
        for v, a in pairs:  # assign only once everything matched: no half-restored model
            v.assign(a)
        model.iteration.assign(int(arrays["iteration"]))  # selects the noise of the next iteration
        return int(arrays["iteration"])
    return 0
