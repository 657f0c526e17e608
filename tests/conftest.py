"""Shared test set-up: quiet TF, keep caches/splits out of the user's home and the checkout,
and skip tests that need ``../shared/data`` when it is absent (a user's fresh clone)."""
import os
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
