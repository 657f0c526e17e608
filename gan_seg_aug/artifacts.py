"""Atomic outputs and provenance: nothing half-written, every output says how it was made.

Files are written to a temporary name in the same directory and renamed into place
(``os.replace`` is atomic on POSIX), so an interrupted run leaves either the old file or the
new one, never a truncated one.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should read like any other file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_write_csv(path, frame) -> Path:
    """Write a pandas DataFrame atomically (no index column)."""
    return atomic_write_text(path, frame.to_csv(index=False))


def atomic_save_npz(path, **arrays) -> Path:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def git_commit() -> str:
    """The project's commit, with ``+dirty`` when tracked files outside ``results/`` have changes; ``unknown``
    outside git. ``results/`` is left out because the sweep writes its tables into the checkout it runs from, so
    every later run would otherwise be marked dirty although its code is the commit's."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=_REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


# the instruction-set features that change a run's arithmetic (kernel choice, native or emulated bf16)
_CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_fields(cpuinfo: str | None = None) -> dict:
    """The first processor's /proc/cpuinfo fields (it speaks for all); empty where there is no such file.
    ``cpuinfo``: for tests, the file's text."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields = {}
    for line in cpuinfo.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_kind(cpuinfo: str | None = None) -> str:
    r"""The machine kind a run's numbers are bit-identical within (docs/decisions.md, "Run profiles").

    ``cpuinfo``: as in :func:`cpu_fields` (``platform.processor()`` where there is no /proc/cpuinfo).

    >>> cpu_kind("vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 17\nmodel name : AMD EPYC\n"
    ...          "flags : fpu avx2 fma avx512f avx512_bf16\n\nvendor_id : AuthenticAMD\n")
    'AuthenticAMD family 25 model 17 (AMD EPYC): avx2 fma avx512f avx512_bf16'
    """
    fields = cpu_fields(cpuinfo)
    if not fields:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    kind = (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
            f" ({fields.get('model name', '?')})")
    return f"{kind}: {' '.join(f for f in _CPU_FEATURES if f in flags)}"


def provenance(**extra) -> dict:
    """What every output records: commit, date, machine, library versions, plus ``extra``
    (callers pass ``profile=``, ``dataset=``, ``seed=``, ``iterations=``).

    Library versions are reported for the libraries the process has already loaded; nothing is
    imported here, so data-only commands do not pay seconds for a TensorFlow import.
    """
    import sys

    info = {
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu_kind(),
        "python": platform.python_version(),
    }
    for module, key in (("numpy", "numpy"), ("cv2", "opencv"), ("PIL", "pillow"), ("tensorflow", "tensorflow")):
        if module in sys.modules:
            info[key] = getattr(sys.modules[module], "__version__", "unknown")
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            info["devices"] = [d.device_type for d in tf.config.list_physical_devices()]
        except Exception:  # provenance must never be the reason a run fails
            pass
    info.update(extra)
    return info
