"""How a long call says how far it got, without the library knowing about terminals.

A library function that can take more than a few seconds takes an optional ``progress``: an object with
``start(total, description)``, ``advance(description=None)`` and ``done()`` (:class:`Progress`), or a plain
callable ``f(done, total, what)``. The default is :class:`Silent`. The command line passes a
:class:`RichProgress`: a bar on standard error, shown only when standard output and standard error are both
terminals and no machine output (``--json``, ``--csv``, ``--markdown``) was asked for; standard output is
byte-identical with and without it. Rich is imported only when a :class:`RichProgress` is made.

>>> seen = []
>>> for step in track(lambda done, total, what: seen.append((done, total, what)), ["stem", "head"], str):
...     pass
>>> seen
[(0, 2, 'stem (1/2)'), (1, 2, 'head (2/2)'), (2, 2, 'head (2/2)')]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Progress", "ProgressLike", "Silent", "RichProgress", "Steps", "as_progress", "labelled", "track"]

T = TypeVar("T")


@runtime_checkable
class Progress(Protocol):
    """What a long call reports to: tasks of ``total`` steps (``None``: not known beforehand)."""

    def start(self, total: int | None, description: str) -> None:
        """A task begins (it replaces the one before): ``total`` steps, described as ``description``."""

    def advance(self, description: str | None = None) -> None:
        """One step finished; ``description``, when given, says what is being done now."""

    def done(self) -> None:
        """The task ended (finished or not)."""


ProgressLike = Progress | Callable[[int, int, str], None] | None
"""What a ``progress`` argument accepts: a :class:`Progress`, a callable ``f(done, total, what)`` or None."""


class Silent:
    """Reports to nobody: the default of every ``progress`` argument. Also a context manager, like
    :class:`RichProgress`, so a command can hold either."""

    def start(self, total: int | None, description: str) -> None:
        """Nothing."""

    def advance(self, description: str | None = None) -> None:
        """Nothing."""

    def done(self) -> None:
        """Nothing."""

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Callback:
    """A callable ``f(done, total, what)`` as a :class:`Progress` (an unknown total is passed as 0)."""

    def __init__(self, f: Callable[[int, int, str], None]) -> None:
        self.f, self.total, self.count, self.text = f, 0, 0, ""

    def start(self, total: int | None, description: str) -> None:
        self.total, self.count, self.text = total or 0, 0, description
        self.f(0, self.total, description)

    def advance(self, description: str | None = None) -> None:
        self.count += 1
        self.text = description if description is not None else self.text
        self.f(self.count, self.total, self.text)

    def done(self) -> None:
        return None


def as_progress(progress: ProgressLike) -> Progress:
    """``progress`` as a :class:`Progress`: None is :class:`Silent`, a callable ``f(done, total, what)`` is wrapped.

    >>> as_progress(None).advance("nothing shown")
    """
    if progress is None:
        return Silent()
    if isinstance(progress, Progress):
        return progress
    if callable(progress):
        return _Callback(progress)
    raise TypeError(f"progress must be an object with start/advance/done or a callable f(done, total, what), "
                    f"got {type(progress).__name__}")


class _Labelled:
    def __init__(self, inner: Progress, label: str) -> None:
        self.inner, self.label = inner, label

    def start(self, total: int | None, description: str) -> None:
        self.inner.start(total, f"{self.label}: {description}")

    def advance(self, description: str | None = None) -> None:
        self.inner.advance(None if description is None else f"{self.label}: {description}")

    def done(self) -> None:
        self.inner.done()


def labelled(progress: ProgressLike, label: str) -> Progress:
    """``progress`` with every description prefixed by ``label: `` (what is measured, for a generic step).

    >>> labelled(print_progress, "resnet18").start(None, "warm-up")   # shows 'resnet18: warm-up'  # doctest: +SKIP
    """
    inner = as_progress(progress)
    return inner if isinstance(inner, Silent) else _Labelled(inner, label)


class Steps:
    """Numbered steps of one task: :meth:`next` finishes the step before (if any) and shows ``what (i/n)``;
    :meth:`close` finishes the last one and ends the task. A context manager (an error ends the task without
    counting the failed step).

    >>> with Steps(progress, 3) as steps:                                      # doctest: +SKIP
    ...     steps.next("tracing"); trace()
    ...     steps.next("writing ONNX"); write()
    ...     steps.next("checking parity"); check()
    """

    def __init__(self, progress: ProgressLike, total: int | None) -> None:
        self.progress, self.total, self.count = as_progress(progress), total, 0

    def next(self, what: str) -> None:
        """Step ``what`` begins (the one before it finished)."""
        self.count += 1
        text = f"{what} ({self.count}/{self.total})" if self.total is not None else f"{what} ({self.count})"
        if self.count == 1:
            self.progress.start(self.total, text)
        else:
            self.progress.advance(text)

    def close(self, finished: bool = True) -> None:
        """The last step finished (unless ``finished`` is False: it failed); the task ends."""
        if finished and self.count:
            self.progress.advance()
        self.progress.done()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self.close(finished=kind is None)


def track(progress: ProgressLike, items: Iterable[T], what: Callable[[T], str]) -> Iterator[T]:
    """Each of ``items``, one step each, shown as ``what(item) (i/n)`` while it is worked on.

    >>> for step in track(progress, plan.steps, lambda s: f"timing {s.name}"):   # doctest: +SKIP
    ...     time_it(step)
    """
    items = list(items)
    steps = Steps(progress, len(items))
    finished = False
    try:
        for item in items:
            steps.next(what(item))
            yield item
        finished = True
    finally:
        steps.close(finished)


class RichProgress:
    """A bar on a rich console (the command line's standard error): what is being done, the bar (pulsing when
    the total is unknown), time elapsed and left. Drawn only on a terminal (elsewhere it writes nothing at all);
    gone when the ``with`` block ends.

    No drawing thread: it redraws inside :meth:`start`, :meth:`advance` and :meth:`done` (at most every
    ``refresh_s`` seconds), which timed code calls between its timed repetitions, never during one.

    >>> with RichProgress(Console(stderr=True)) as shown:                     # doctest: +SKIP
    ...     bench_blocks("resnet18", progress=shown)
    """

    def __init__(self, console: Any, refresh_s: float = 0.1) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console, self.refresh_s = console, refresh_s
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, transient=True, auto_refresh=False, redirect_stdout=False,
                            redirect_stderr=False)
        self.task: Any = None
        self.shown = 0.0
        self.started = False

    def _draw(self, now: bool = False) -> None:
        t = time.monotonic()
        if now or t - self.shown >= self.refresh_s:
            self.shown = t
            self.bar.refresh()

    def start(self, total: int | None, description: str) -> None:
        """A new task (the one before, if any, is removed); nothing at all on a console that is no terminal."""
        if not self.console.is_terminal:  # rich would still end a display with a newline there
            return
        if not self.started:
            self.bar.start()
            self.started = True
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(description, total=total)
        self._draw(now=True)

    def advance(self, description: str | None = None) -> None:
        """One step done (and what is done now)."""
        if self.task is None:
            return
        if description is None:
            self.bar.advance(self.task)
        else:
            self.bar.update(self.task, advance=1, description=description)
        self._draw()

    def describe(self, description: str) -> None:
        """Say what is done now, without a step finishing (ablate's epochs)."""
        if self.task is not None:
            self.bar.update(self.task, description=description)
            self._draw()

    def print(self, text: str) -> None:
        """A line above the bar (plain text, no markup)."""
        self.bar.console.print(text, highlight=False, markup=False)

    def done(self) -> None:
        """The task is removed from the display."""
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
            self._draw(now=True)

    def close(self) -> None:
        """The display is taken down (nothing of it stays on the terminal)."""
        if self.started:
            self.bar.stop()
            self.started = False

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
