"""Training: tasks, the recipe, reporters, the built-in classify trainer, checkpoints and a generated dataset.

Nothing here knows about ablations; :mod:`blockstitch.ablate` hands a task a built model, a :class:`Recipe`,
the data, a seed and a trial folder, and gets numbers back.

>>> from blockstitch.train import Recipe, get_task
>>> get_task("classify").metrics
('top1', 'top5')

Layering: a tool (beside bench and check, over profile); it imports nothing from its sibling tools.
"""

from __future__ import annotations

from typing import Any

from .datasets import SHAPES, make_shapes_dataset
from .recipe import Recipe
from .reporter import RecordingReporter, Reporter
from .task import TASKS, Task, TrainError, get_task

__all__ = ["Task", "TASKS", "get_task", "TrainError", "Recipe", "Reporter", "RecordingReporter",
           "make_shapes_dataset", "SHAPES", "ClassifyTask", "fit_head", "load_user_trainer"]

_LAZY = {"ClassifyTask": ".classify", "fit_head": ".head", "load_user_trainer": ".user"}


def __getattr__(name: str) -> Any:  # PEP 562: torch-heavy parts load on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
