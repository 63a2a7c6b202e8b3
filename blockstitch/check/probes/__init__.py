"""check-module's checks, one class per file: what each asks the worker for, what runs there, how it is judged.

Every :class:`~.base.Check` subclass defined in a module of this package is found by :func:`all_checks` (no
list to edit: a new check is one new file), ordered by its ``order`` (its place in the report). The sweeps'
probe and verdicts are in ``sizes.py``; :func:`take_numbers` runs every other check at the base size.

Execution: slow checks (``limit_s``) alone, first, each under its own limit; then every other task in one
stream; then the ``backward`` ones (in-process on a copy when a forked child cannot run autograd). Then each
check is judged, in order.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .base import At, Check, Evidence, outcome, run_tasks

if TYPE_CHECKING:
    from ..report import CheckReport
    from ..sweep import ProbeSettings
    from ..worker import Worker

__all__ = ["all_checks", "take_numbers", "Check", "Evidence", "At"]

_FOUND: list[Check[Any, Any]] = []


def all_checks() -> list[Check[Any, Any]]:
    """One instance of every check in this package, in report order.

    >>> [c.name for c in all_checks()][:2]
    ['train and eval, batch 1 and 2', 'finite outputs']
    """
    if not _FOUND:
        classes = []
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            classes += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                        if issubclass(cls, Check) and cls.__module__ == module.__name__ and "order" in vars(cls)]
        _FOUND.extend(cls() for cls in sorted(classes, key=lambda cls: cls.order))
    return list(_FOUND)


def _said(settings: ProbeSettings, planned: list[tuple[Check[Any, Any], Any]]) -> Callable[[Check[Any, Any]], None]:
    """One step of ``settings.progress`` per check that sends tasks, when its last answer arrives (``checks 3/8:
    gradients`` names the one worked on next, in the order the tasks run: slow checks first, autograd last)."""
    left: dict[int, int] = {}
    for check, _ in planned:
        left[id(check)] = left.get(id(check), 0) + 1
    runs = [p[0] for p in planned if p[0].limit_s is not None]
    runs += [p[0] for p in planned if p[0].limit_s is None and not p[0].backward]
    runs += [p[0] for p in planned if p[0].limit_s is None and p[0].backward]
    order = list({id(c): c for c in runs}.values())
    progress, count = settings.progress, len(order)
    if order:
        progress.start(count, f"checks 1/{count}: {order[0].name}")
    finished = [0]

    def said(check: Check[Any, Any]) -> None:
        left[id(check)] -= 1
        if left[id(check)] == 0:
            finished[0] += 1
            i = finished[0]
            progress.advance(f"checks {i + 1}/{count}: {order[i].name}" if i < count else None)

    return said


AUTOGRAD_FORK = "autograd's threading"
"""The words torch uses when a forked child cannot run autograd (its parent already did)."""


def take_numbers(report: CheckReport, settings: ProbeSettings, worker: Worker, base: dict[str, Any],
                 compile: bool, export: bool, backend: str) -> None:
    """Run every check at the ``base`` size (a sweep record) and append their verdicts to ``report``."""
    found = Evidence(At(tuple(base["input"]), base["c"], settings.pattern.text), base, report.sweep, settings,
                     worker.context, compile=compile, export=export, backend=backend)
    checks = all_checks()
    planned = [(check, task) for check in checks for task in check.tasks(found)]
    said = _said(settings, planned)

    def keep(pairs: list[tuple[Check[Any, Any], Any]], replies: Iterable[Any]) -> None:
        for (check, task), reply in zip(pairs, replies):
            found.answers.setdefault(type(check), []).append(outcome(task, reply))
            said(check)

    for pair in [p for p in planned if p[0].limit_s is not None]:  # each under its own limit
        keep([pair], [worker.call(run_tasks, pair, max(settings.seconds, pair[0].limit_s or 0.0))])
    stream = [p for p in planned if p[0].limit_s is None and not p[0].backward]
    keep(stream, (reply for _, reply in worker.stream(run_tasks, stream, settings.seconds)))
    backward = [p for p in planned if p[0].limit_s is None and p[0].backward]
    replies = [reply for _, reply in worker.stream(run_tasks, backward, settings.seconds)]
    if any(AUTOGRAD_FORK in (outcome(None, r).error or "") for r in replies):
        from ..worker import Worker

        with Worker(worker.context, fork=False) as local:  # once the caller has run backward: here, on a copy
            replies = [reply for _, reply in local.stream(run_tasks, backward, settings.seconds)]
    keep(backward, replies)  # (autograd's answers are shown once all are in: they may be run again, here)
    for check in checks:
        verdict = check.judge(found, report)
        if verdict is not None:
            report.checks.append(verdict)
