"""The tasks: the fixed facts of SCR Lung and Cityscapes (paper §V-A, §V-B; thesis Tables 4.1-4.4), and
how any other task -- a folder of the user's own images and masks (``data/folder.py``) -- is described.

The two paper tasks travel through the library as their names; any other task travels as its
:class:`TaskSpec`.  Whatever needs a fact of a task calls :func:`task_spec`, which accepts both (and a
spec recorded in a ``config.json``), so no code needs to test a task's name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TASKS = ("scr_lung", "cityscapes")
CITYSCAPES_CATEGORIES = ("void", "flat", "construction", "object", "nature", "sky", "human", "vehicle")


@dataclass(frozen=True)
class TaskSpec:
    """Fixed facts of a task (paper §V-A, §V-B; thesis Tables 4.1-4.4).

    The two paper tasks are passed through the library by name ("scr_lung", "cityscapes"); any other
    task (a folder of the user's own images and masks, ``data/folder.py``) is passed as its TaskSpec,
    and every function that needs a fact of the task asks :func:`task_spec`, which takes either.  The
    fields after ``unet_batch`` are what used to be decided by testing a task's name.
    """

    name: str
    height: int  # training resolution of the paper profile
    width: int
    image_channels: int
    n_classes: int
    class_names: tuple[str, ...]
    gan_batch: int  # Table 4.1: 16 (SCR), Table 4.3: 8 (Cityscapes)
    unet_batch: int  # paper Tables II / IV: 16 / 8 pairs per minibatch
    # the paper task whose networks (Tables 4.1/4.2 or 4.3/4.4), profile scaling and --aug preset are used
    family: str = ""
    metric: str = "dice"  # "dice": Dice + surface distances (§5.1.2); "miou": mean IoU (§5.2.2)
    valid_mixes: tuple[str, ...] = ()  # the paper's R-G mixes (Tables II / IV); the middle one is the default
    largest_component: bool = False  # §4.2: SCR predictions keep their largest connected component
    distance_unit: str = "mm"  # surface distances in mm (a known spacing) or "px" (own data without one)
    spacing_mm: float | None = None  # own data: the --spacing-mm of the native masks
    colours: tuple[tuple[int, int, int], ...] | None = None  # own data: RGB of each class in colour-coded masks

    def __str__(self) -> str:  # log lines and run directories name the task
        return self.name

    @property
    def pair_channels(self) -> int:
        """Image channels plus the one mask channel (thesis §4.1)."""
        return self.image_channels + 1

    @property
    def default_mix(self) -> str:
        return self.valid_mixes[1]

    @classmethod
    def from_record(cls, record: dict) -> "TaskSpec":
        """The spec a JSON file recorded (``dataclasses.asdict`` of it; lists back to tuples)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - names)
        if unknown:
            raise ValueError(f"not a recorded TaskSpec: unknown fields {unknown}")
        d = dict(record)
        for key in ("class_names", "valid_mixes"):
            d[key] = tuple(d.get(key) or ())
        if d.get("colours") is not None:
            d["colours"] = tuple(tuple(int(v) for v in c) for c in d["colours"])
        return cls(**d)


SCR_LUNG = TaskSpec("scr_lung", 256, 256, 1, 2, ("background", "left_lung"), 16, 16, family="scr_lung",
                    metric="dice", valid_mixes=("16-0", "8-8", "0-16"), largest_component=True)
# Thesis §5.2.2: "[256 x 128 x 3]" is W x H x C, i.e. 128 rows and 256 columns.
CITYSCAPES = TaskSpec("cityscapes", 128, 256, 3, 8, CITYSCAPES_CATEGORIES, 8, 8, family="cityscapes",
                      metric="miou", valid_mixes=("8-0", "4-4", "0-8"))
_TASK_SPECS = {"scr_lung": SCR_LUNG, "cityscapes": CITYSCAPES}
# The smallest network side of each family: the GAN needs one stride-2 stage above its 4x4 / 4x8 start,
# the U-Net one 2x2 pooling per level (3 levels SCR, 4 Cityscapes; nets/networks.py).
FAMILY_MIN_SIDE = {"scr_lung": 8, "cityscapes": 16}


def normalise_task(task):
    """A task as the library passes it: a paper task's name, or the :class:`TaskSpec` of any other.

    A spec equal to a paper task's becomes its name (so its outputs stay exactly the paper task's), and a
    recorded spec (a dict read back from a ``config.json``) becomes a TaskSpec again.
    """
    if isinstance(task, dict):
        task = TaskSpec.from_record(task)
    if isinstance(task, str):
        if task not in _TASK_SPECS:
            raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
        return task
    if not isinstance(task, TaskSpec):
        raise ValueError(f"a task is a name ({', '.join(TASKS)}) or a TaskSpec, got {type(task).__name__}")
    if task.name in _TASK_SPECS:
        if task != _TASK_SPECS[task.name]:
            raise ValueError(f"a task named {task.name!r} must be the paper's task; give this one another name")
        return task.name
    if task.family not in _TASK_SPECS or task.metric not in ("dice", "miou"):
        raise ValueError(f"task {task.name!r}: family must be one of {', '.join(TASKS)} and metric 'dice' or "
                         f"'miou', got {task.family!r} / {task.metric!r}")
    return task


def task_spec(task) -> TaskSpec:
    """The facts of ``task``: a paper task's name, a TaskSpec (returned unchanged) or a recorded one."""
    task = normalise_task(task)
    return _TASK_SPECS[task] if isinstance(task, str) else task


def task_name(task) -> str:
    return task_spec(task).name


def task_fields(task) -> dict:
    """How summaries and manifests record a task: its name, plus the whole spec when it is not a paper task."""
    task = normalise_task(task)
    return {"task": task} if isinstance(task, str) else {"task": task.name, "task_spec": dataclasses.asdict(task)}


def family_spec(task) -> TaskSpec:
    """The paper task whose thesis networks ``task`` uses (itself for the paper tasks)."""
    return _TASK_SPECS[task_spec(task).family]


def family_sides(family: str) -> tuple[int, ...]:
    """The training heights (paper profile) the family's networks support: powers of two from the smallest
    network up to the thesis' own size (Tables 4.1 / 4.3: each stride-2 stage doubles the side).

    >>> family_sides("scr_lung"), family_sides("cityscapes")
    ((8, 16, 32, 64, 128, 256), (16, 32, 64, 128))
    """
    side, top, out = FAMILY_MIN_SIDE[family], _TASK_SPECS[family].height, []
    while side <= top:
        out.append(side)
        side *= 2
    return tuple(out)


