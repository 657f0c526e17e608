"""The commands' console logging: progress lines exactly as printed before, warnings and errors flagged.

Library modules log to ``logging.getLogger(__name__)`` and never configure anything, so a notebook or
another program decides what it sees (call :func:`configure` there too to get the commands' output).
Every command calls :func:`add_verbosity_args` on its parser and ``configure(verbosity(args))`` right
after parsing:

* INFO (the default level): the bare message on stdout -- ``[gan] iter 20/2000 | critic ...``;
* DEBUG (``-v``): also the diagnostic lines, prefixed ``debug: ``, on the same stream;
* WARNING and above: ``warning: `` / ``error: `` + message on stderr; ``-q`` shows only these.

>>> import argparse, io
>>> p = argparse.ArgumentParser()
>>> add_verbosity_args(p)
>>> verbosity(p.parse_args(["-vv"])), verbosity(p.parse_args(["-q"])), verbosity(p.parse_args([]))
(2, -1, 0)
>>> out, err = io.StringIO(), io.StringIO()
>>> _ = configure(0, stream=out, err_stream=err)
>>> _ = configure(0, stream=out, err_stream=err)  # again: still one pair of handlers
>>> logging.getLogger("gan_seg_aug.demo").info("[gan] iter 1/2")
>>> logging.getLogger("gan_seg_aug.demo").warning("cache file x is stale")
>>> logging.getLogger("gan_seg_aug.demo").debug("not shown without -v")
>>> out.getvalue(), err.getvalue()
('[gan] iter 1/2\\n', 'warning: cache file x is stale\\n')
>>> _ = configure(-1, stream=out, err_stream=err)
>>> logging.getLogger("gan_seg_aug.demo").info("hidden by -q")
>>> out.getvalue()
'[gan] iter 1/2\\n'
>>> import contextlib
>>> _ = configure(0)  # the default streams: whatever sys.stdout / sys.stderr are at each record
>>> with contextlib.redirect_stdout(io.StringIO()) as buf:
...     logging.getLogger("gan_seg_aug.demo").info("to the current stdout")
>>> buf.getvalue()
'to the current stdout\\n'
>>> reset()
"""
from __future__ import annotations

import argparse
import logging
import sys

ROOT = "gan_seg_aug"
_PREFIX = {logging.DEBUG: "debug: ", logging.WARNING: "warning: ", logging.ERROR: "error: ",
           logging.CRITICAL: "error: "}


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _PREFIX.get(record.levelno, "") + super().format(record)


class _SysStream(logging.StreamHandler):
    """A handler on ``sys.stdout`` / ``sys.stderr`` looked up at every record, not at configure time:
    pytest's capsys (and anything else that swaps ``sys.stdout``) would otherwise receive nothing
    once a command ran in-process earlier."""

    def __init__(self, name: str):
        self._sys_attr = name
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self._sys_attr)

    @stream.setter
    def stream(self, _value):  # StreamHandler.__init__ assigns one; the lookup above wins
        pass


def _handler(stream, default: str) -> logging.Handler:
    if stream is None:
        return _SysStream(default)
    if stream is sys.stdout or stream is sys.stderr:
        return _SysStream("stdout" if stream is sys.stdout else "stderr")
    return logging.StreamHandler(stream)


def configure(verbosity: int = 0, *, stream=None, err_stream=None) -> logging.Logger:
    """Set up the ``gan_seg_aug`` logger for a command; calling it again replaces the earlier set-up.

    ``verbosity``: > 0 DEBUG, 0 INFO, < 0 WARNING.  ``stream``: where DEBUG/INFO go (default stdout;
    ``sys.stderr`` keeps stdout for a machine-readable result, as ``--json`` does).  ``err_stream``:
    where WARNING and above go (default stderr).
    """
    logger = logging.getLogger(ROOT)
    reset()
    low = _handler(stream, "stdout")
    low.addFilter(lambda record: record.levelno < logging.WARNING)
    high = _handler(err_stream, "stderr")
    high.setLevel(logging.WARNING)
    for h in (low, high):
        h.setFormatter(_Formatter("%(message)s"))
        h._gan_seg_aug_console = True
        logger.addHandler(h)
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO if verbosity == 0 else logging.WARNING)
    # Records still propagate, so pytest's caplog (a root handler) sees them; commands leave the root bare.
    return logger


def reset() -> None:
    """Remove what :func:`configure` installed (its handlers and level)."""
    logger = logging.getLogger(ROOT)
    for h in [h for h in logger.handlers if getattr(h, "_gan_seg_aug_console", False)]:
        logger.removeHandler(h)
    logger.setLevel(logging.NOTSET)


def add_verbosity_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="also print debug lines")
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="only warnings and errors (no progress lines)")


def verbosity(args) -> int:
    """``-v`` count minus ``-q`` count (0 for a namespace without those flags)."""
    return getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
