"""Running a module safely: on meta tensors first, then for real at capped sizes under a time limit."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..meta import meta_call

__all__ = ["Outcome", "run_meta", "run_real", "time_limit", "first_line"]


class Outcome:
    """What one run gave: the output (or None) and the module's own error message (or None)."""

    def __init__(self, out: Any = None, error: str | None = None, warned: list[str] | None = None) -> None:
        self.out, self.error, self.warned = out, error, warned or []

    @property
    def ok(self) -> bool:
        """The run finished without raising."""
        return self.error is None

    @property
    def tensor(self) -> torch.Tensor | None:
        """The (first) output tensor."""
        out = self.out
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        return out if isinstance(out, torch.Tensor) else None


def first_line(err: BaseException) -> str:
    """``TypeName: first line of the message`` — the module's own words."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise inside the block after ``seconds`` (main thread on Unix; elsewhere no limit is enforced)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout(f"took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_meta(module: nn.Module, x_shape: tuple[int, ...], train: bool = False, seconds: float = 30) -> Outcome:
    """Forward on a meta tensor; real weights get meta stand-ins (nothing allocated, nothing changed)."""
    try:
        with time_limit(seconds):
            return Outcome(meta_call(module, [torch.empty(x_shape, device="meta")], train=train))
    except Exception as err:  # noqa: BLE001 — any failure of the module under test is a finding
        return Outcome(error=first_line(err))


def run_real(fn: Callable[[], Any], seconds: float) -> Outcome:
    """Run ``fn`` for real under a time limit; a failure, a timeout or a warning is an outcome, not a crash."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(seconds):
                out = fn()
        except Exception as err:  # noqa: BLE001
            return Outcome(error=first_line(err), warned=[str(w.message).splitlines()[0] for w in caught])
    return Outcome(out, warned=[str(w.message).splitlines()[0] for w in caught])
