"""A task: what "train this model on that data and score it" means, behind one method.

``classify`` is built in (:mod:`blockstitch.train.classify`); ``detect`` is registered by
:mod:`blockstitch.yolo.detect_task` when imported; a user's own loop enters as ``--trainer file.py:fit``
(:mod:`blockstitch.train.user`). Tasks know nothing of ablations: the ablate driver hands them a built model.

>>> task = get_task("classify")
>>> task.name, task.metrics, task.primary
('classify', ('top1', 'top5'), 'top1')
>>> get_task("clasify")
Traceback (most recent call last):
...
blockstitch.errors.SpecError: unknown task 'clasify' — did you mean 'classify'?
...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import BlockstitchError, SpecError, did_you_mean

if TYPE_CHECKING:
    from torch import nn

    from .recipe import Recipe
    from .reporter import Reporter

__all__ = ["Task", "TASKS", "get_task", "TrainError"]


class TrainError(BlockstitchError):
    """A trial could not train on its own terms (a NaN or infinite loss, a resumed checkpoint that does not
    match, a trainer that returned no numbers); the message says which epoch and step, and what to try."""


@runtime_checkable
class Task(Protocol):
    """What every task offers the driver.

    ``metrics`` are the table's columns, ``primary`` the one it ranks by (higher is better). ``fit`` trains
    ``model`` in place on ``data`` and returns the final metrics plus ``"epochs"`` (done) and ``"best_epoch"``;
    it writes its checkpoints in ``trial_dir`` and resumes from them.
    """

    name: str
    metrics: tuple[str, ...]
    primary: str

    def fit(self, model: nn.Module, recipe: Recipe, data: Path, *, seed: int, device: str, trial_dir: Path,
            reporter: Reporter) -> dict[str, float]:
        """Train and score; see the class docstring."""
        ...


TASKS: dict[str, Task] = {}
"""Registered tasks by name. ``classify`` is added when :mod:`blockstitch.train.classify` is imported (which
:func:`get_task` does on demand); other packages add theirs (``TASKS["detect"] = DetectTask()``)."""

_BUILT_IN = {"classify": ".classify"}
"""Built-in tasks by name → the module that registers each, imported by name on first use (as the block registry
reaches its families): the task module stays below them, and they import it."""


def get_task(name: str) -> Task:
    """The registered task called ``name``; a :class:`SpecError` with the nearest name otherwise.

    >>> get_task("classify").primary
    'top1'
    """
    if name not in TASKS and name in _BUILT_IN:
        import importlib

        importlib.import_module(_BUILT_IN[name], __package__)  # registers itself
    if name not in TASKS:
        known = sorted(set(TASKS) | set(_BUILT_IN))
        hint = "detect is registered by blockstitch.yolo.detect_task" if name == "detect" else None
        raise SpecError(f"unknown task '{name}'{did_you_mean(name, known)}", expected=" | ".join(known),
                        found=repr(name), hint=hint)
    return TASKS[name]
