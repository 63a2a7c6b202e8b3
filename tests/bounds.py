"""A wall-clock bound for tests that feed hostile input to the CLI: a hang becomes a test failure."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so the CLI's own handlers let it through."""


@contextmanager
def bounded(seconds: float = 10) -> Iterator[None]:
    """Raise :class:`Hang` if the block takes longer than ``seconds`` (main thread, SIGALRM)."""
    def ring(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
