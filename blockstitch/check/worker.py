"""Isolation: the module under test runs in a forked worker process, never in the caller's.

A probe that hangs (past its time limit), asks for too much memory (an address-space limit in the worker turns
that into the module's own allocation error) or kills the process (a segfault, ``os._exit``) becomes a reported
failure for the item it was working on; the worker is forked again for the items after it. One worker serves
many probes, so a check forks once in the common case. The worker is a copy of the caller made by ``fork``:
whatever the module does to itself, to its caches or to global torch state stays in the copy.

Where ``fork`` does not exist (Windows) probes run in-process on a deep copy, under SIGALRM where available.

>>> with Worker(UnderTest(instance=torch.nn.Identity())) as w:
...     list(w.stream(_demo, [1, 2], seconds=5))
[(1, Reply(value=2, error=None)), (2, Reply(value=3, error=None))]
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import multiprocessing as mp
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from .under_test import UnderTest

__all__ = ["Worker", "Reply", "Probe", "held"]

T = TypeVar("T")
R = TypeVar("R")

Probe = Callable[[UnderTest, Sequence[T]], Iterator[R]]
"""A generator function ``probe(held, items)`` yielding one picklable record per item, in order."""

_HELD: list[UnderTest] = []
"""What the worker holds: set in the parent just before a fork (so the child has it), cleared right after."""
STARTUP_S = 20.0
"""Extra time for the first item after a fork (a fresh worker on a loaded machine starts slowly)."""


def held() -> UnderTest:
    """What this worker holds (the module under test and the probes' caches)."""
    return _HELD[0]


@dataclass
class Reply(Generic[R]):
    """One item's result, or why there is none (``error``: the probe raised, hung or the worker died)."""

    value: R | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A value came back."""
        return self.error is None


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _serve(conn: Any, memory: int) -> None:
    """The worker's loop: one thread, quiet, memory-limited; each request streams its items back."""
    import torch

    faulthandler.disable()  # a module that crashes the worker is a finding, not a traceback on the caller's screen
    if getattr(torch.cuda, "_is_in_bad_fork", lambda: False)():
        # the caller had initialised CUDA, which a forked child cannot use: in this throwaway copy of the process
        # there is none, so torch.compile (which saves CUDA's RNG state when CUDA "is available") does not fail
        torch.cuda.is_available = lambda: False  # type: ignore[assignment]
        torch.cuda.device_count = lambda: 0  # type: ignore[assignment]
    torch.set_num_threads(1)  # OpenMP pools do not survive fork; one thread is also fair to the caller
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # a module that prints must not corrupt the caller's output (JSON on stdout)
    os.dup2(null, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 — also where Python-level streams were redirected
    if memory > 0:
        limit = _vm_bytes() + memory
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        except (ValueError, OSError):
            pass
    normal = torch.inference_mode(False)  # a caller in inference mode: gradients still work here
    normal.__enter__()
    torch.set_grad_enabled(True)
    while True:
        try:
            probe, items = conn.recv()
        except EOFError:
            os._exit(0)
        try:
            for result in probe(_HELD[0], items):
                conn.send(("item", result))
            conn.send(("done", None))
        except BaseException as err:  # noqa: BLE001 — a probe bug must not hang the caller
            conn.send(("fail", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"))


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the module killed its process ({name}{hint})"
    return f"the module ended its process (exit code {code})"


class Worker:
    """A forked process holding ``context``; ``stream(probe, items, seconds)`` yields ``(item, Reply)``.

    ``memory``: bytes of address space the worker may add (0: no limit); ``budget``: seconds for all probes
    together; ``fork=False`` (or no ``fork`` on this platform): in-process on a deep copy of ``context``,
    with SIGALRM time limits and no memory limit. Use as a context manager.
    """

    def __init__(self, context: UnderTest, memory: int = 0, budget: float = float("inf"),
                 fork: bool = True) -> None:
        self.memory = memory
        self.deadline = time.monotonic() + budget
        self.budget = budget
        self._context = context
        self._proc: Any = None
        self._conn: Any = None
        self.forks = 0
        self.inline = not fork or not hasattr(os, "fork")
        if self.inline:
            _HELD[:] = [context.copied()]

    @property
    def context(self) -> UnderTest:
        """What the worker was given (the caller's objects: run them only on copies)."""
        return self._context

    def _start(self) -> None:
        _HELD[:] = [self._context]
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.memory), daemon=True)
        self._proc.start()
        child.close()
        _HELD.clear()  # the parent keeps no reference to what the worker holds
        self.forks += 1

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None

    def stream(self, probe: Probe[T, R], items: Sequence[T], seconds: float
               ) -> Generator[tuple[T, Reply[R]], None, None]:
        """Run ``probe`` over ``items``; each item gets ``seconds`` (and no more than the budget has left). A hang
        or a death is that item's Reply, and the items after it go to a fresh worker. A caller that stops
        iterating early stops the worker too (it would still be busy with the rest)."""
        items = list(items)
        if time.monotonic() > self.deadline:
            for item in items:
                yield item, Reply(error=self._spent())
            return
        if self.inline:
            yield from self._inline(probe, items, seconds)
            return
        i = 0
        try:
            while i < len(items):
                if time.monotonic() > self.deadline:  # (before forking a worker that would do nothing)
                    rest, i = items[i:], len(items)
                    for item in rest:
                        yield item, Reply(error=self._spent())
                    return
                started = self._proc is None
                if started:
                    self._start()
                self._conn.send((probe, items[i:]))
                while i < len(items):
                    wait = seconds + (STARTUP_S if started else 0.0)
                    left = max(self.deadline - time.monotonic(), 0.0)
                    reply = self._receive(min(wait, left))
                    started = False
                    if reply is None:
                        self._stop()
                        reply = ("timeout", f"took longer than {seconds:g} s (stopped)" if left >= wait else
                                 f"not run to the end: the check's time budget ({self.budget:g} s) ran out")
                    elif reply[0] == "died":
                        self._stop()
                    elif reply[0] == "item" and i == len(items) - 1:
                        self._receive(seconds)  # the "done" marker, read before the caller may stop iterating
                    item, i = items[i], i + 1
                    yield item, Reply(value=cast(R, reply[1])) if reply[0] == "item" else Reply(error=reply[1])
                    if reply[0] != "item":
                        break
        finally:
            if i < len(items):  # the caller stopped early: the worker is still busy with the items after
                self._stop()

    def _spent(self) -> str:
        return f"not run: the check's time budget ({self.budget:g} s) is spent"

    def call(self, probe: Probe[T, R], item: T, seconds: float) -> Reply[R]:
        """One item: ``stream(probe, [item], seconds)``'s reply."""
        return next(iter(self.stream(probe, [item], seconds)))[1]

    def _receive(self, seconds: float) -> tuple[str, Any] | None:
        try:
            if not self._conn.poll(seconds):
                return None
            return self._conn.recv()
        except (EOFError, OSError, ConnectionError):
            self._proc.join(1)
            return ("died", _died(self._proc.exitcode))

    def _inline(self, probe: Probe[T, R], items: list[T], seconds: float) -> Iterator[tuple[T, Reply[R]]]:
        import torch

        from ..meta import torch_state_guard
        from .time_limit import time_limit

        for item in items:
            try:  # in-process: global state is the caller's (grad mode, inference mode, stdout) — set and restored
                with torch_state_guard(), time_limit(seconds), torch.inference_mode(False), torch.enable_grad(), \
                        contextlib.redirect_stdout(io.StringIO()):
                    value = next(iter(probe(_HELD[0], [item])))
                yield item, Reply(value=value)
            except Exception as err:  # noqa: BLE001
                yield item, Reply(error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")

    def close(self) -> None:
        """Stop the worker."""
        self._stop()
        if self.inline:
            _HELD.clear()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _demo(held: UnderTest, items: Sequence[int]) -> Iterator[int]:
    for item in items:
        yield item + 1
