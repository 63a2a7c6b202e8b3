"""A time limit for in-process runs (the fallback where the worker process cannot be forked)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["time_limit"]


class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float, error: type[BaseException] = _Timeout) -> Iterator[None]:
    """Raise ``error`` inside the block after ``seconds`` (main thread on Unix; elsewhere no limit is enforced).

    >>> with time_limit(1.0):
    ...     pass
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise error(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
