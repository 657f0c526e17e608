"""Shared test set-up: quiet TF, keep caches/splits out of the user's home and the checkout,
and skip tests that need ``../shared/data`` when it is absent (a user's fresh clone)."""
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GAN_SEG_AUG_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_and_splits(tmp_path_factory):
    """Session-wide: the preprocessing cache and saved splits go to a temporary directory."""
    base = tmp_path_factory.mktemp("gsa_env")
    old = {k: os.environ.get(k) for k in ("GAN_SEG_AUG_CACHE", "GAN_SEG_AUG_SPLIT_DIR")}
    os.environ["GAN_SEG_AUG_CACHE"] = str(base / "cache")
    os.environ["GAN_SEG_AUG_SPLIT_DIR"] = str(base / "splits")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data samples not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the real data samples at {SHARED_DATA} (absent)")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


# Runs shared by test_tables, test_compare and test_notebooks: the real experiment commands on the smoke profile.
SMOKE_ONLY = "8-8-NoAug,16-0-Aug,4-4-NoAug,8-0-Aug"


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """Runs, tables and comparison of a small smoke-profile sweep with the real experiment commands:
    fold 1 of 8-8-NoAug / 16-0-Aug (SCR) and 4-4-NoAug / 8-0-Aug (Cityscapes), i.e. 2 GANs and 4 U-Nets.
    Table I's bold row and Table III's flip row are the same runs, so all four tables have rows.

    Used by test_tables, test_compare and test_notebooks; session-scoped, so the sweep runs once."""
    base = tmp_path_factory.getbasetemp() / "smoke_sweep"
    runs, results = base / "runs", base / "results"
    if not (base / "done").exists():
        cmd = [sys.executable, str(REPO / "experiments" / "tables.py"), "--table", "all", "--profile", "smoke",
               "--folds", "1", "--only", SMOKE_ONLY, "--jobs", "2", "--runs-dir", str(runs),
               "--results-dir", str(results)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        (base / "sweep.log").write_text(proc.stdout + proc.stderr)
        (base / "done").write_text("")
    return {"runs": runs, "results": results, "log": (base / "sweep.log").read_text()}
