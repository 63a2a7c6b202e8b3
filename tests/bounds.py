"""A wall-clock bound for tests that feed hostile input to the CLI: a hang becomes a test failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from blockstitch.check.time_limit import time_limit


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so the CLI's own handlers let it through."""


@contextmanager
def bounded(seconds: float = 10) -> Iterator[None]:
    """Raise :class:`Hang` if the block takes longer than ``seconds`` (main thread, SIGALRM)."""
    with time_limit(seconds, Hang):
        yield
