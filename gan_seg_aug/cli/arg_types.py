"""Argument types the commands share (one owner for each flag rule)."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1.

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def directory_or_new(text: str) -> str:
    """argparse type: a directory, or a path that does not exist yet (it is created when needed).

    >>> directory_or_new("/no/such/dir/yet")
    '/no/such/dir/yet'
    """
    from pathlib import Path

    p = Path(text).expanduser()
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    parent = next((q for q in p.absolute().parents if q.exists()), None)
    if not p.exists() and parent is not None and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a directory")
    return str(p)


def run_path(path: str, runs_dir: str | None) -> str:
    """A run directory given on the command line: as written if it exists, else relative to ``--runs-dir``.

    >>> run_path("/no/such/run", None)
    '/no/such/run'
    """
    from pathlib import Path

    if Path(path).exists() or not runs_dir:
        return path
    under = Path(runs_dir) / path
    return str(under) if under.exists() else path
