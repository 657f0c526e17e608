"""Data sources behind one interface: :class:`TaskData` (see ``base.py``).

``load_task(task, data_dir=None, ...)`` is the entry point; it lives in ``loaders.py``.
"""
from gan_seg_aug.data.base import TaskData  # noqa: F401
