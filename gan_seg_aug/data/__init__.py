"""Data sources behind one interface: :class:`TaskData` (see ``base.py``).

``load_task(task, data_dir=None, ...)`` is the entry point; it lives in ``loaders.py``.
"""
from .base import TaskData  # noqa: F401
