"""Import TensorFlow without its start-up chatter.

TensorFlow 2.21 writes about eight lines to the process's stderr file descriptor while it loads and
probes for CUDA (oneDNN notes, "Could not find cuda drivers", an error-level "failed call to cuInit" on
machines without a GPU), before ``TF_CPP_MIN_LOG_LEVEL`` or absl's flags take effect.  None of it is
news to a user of this project, so the commands import TensorFlow through :func:`import_tensorflow`,
after their arguments are parsed, with file descriptor 2 pointed at /dev/null for the import and the
first device probe only.  Python exceptions are raised after stderr is restored, so a broken install
still says why.
"""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """``tensorflow``, imported (once) with its C++ start-up lines silenced and its devices probed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if os.environ.get("GAN_SEG_AUG_TF_VERBOSE"):  # debugging an install: show everything
        import tensorflow as tf

        return tf
    with _stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe, and its error-level line, happen here
    return tf
