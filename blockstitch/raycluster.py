"""Ray on our terms: one way to reach a cluster (or start a private one on the loopback address), and one way to
collect task results as they finish that cancels whatever is still running when the caller stops (Ctrl-C).

Ray is an extra (``pip install 'blockstitch[ray]'``); without it, :func:`require_ray` is a one-line error. Both
the ablation backend and the sweep's Ray path go through here, so they start, bind and stop Ray the same way.

A Ray started here (no address) listens on 127.0.0.1 only and runs no dashboard: Ray otherwise resolves
"127.0.0.1" to the machine's routable address and binds its gRPC servers to every interface. Joining an existing
cluster (``address="auto"``, ``"ray://host:10001"``, ``"host:6379"``) uses that cluster's own settings.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from .errors import BlockstitchError, SpecError

__all__ = ["check_gpus", "LOOPBACK", "OOM_RETRIES", "RayUnavailable", "as_completed", "error_line", "loopback_only",
           "ray_session", "require_ray"]

LOOPBACK = "127.0.0.1"
"""The only address a Ray started by blockstitch binds to."""
OOM_RETRIES = 3
"""Restarts of a task that Ray's memory monitor killed, in a Ray started here (Ray's own default may be endless;
a cluster's nodes take ``RAY_task_oom_retries`` from their environment)."""


class RayUnavailable(BlockstitchError):
    """``--backend ray`` without Ray installed (the CLI prints the one line and exits 2)."""


def require_ray() -> ModuleType:
    """Import Ray, or say in one line how to get it.

    >>> ray = require_ray()  # doctest: +SKIP
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--backend ray needs Ray: pip install 'blockstitch[ray]'") from None
    return ray


def loopback_only() -> None:
    """Make every Ray process this one starts (and its children) bind to 127.0.0.1.

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` at import: off, a "127.0.0.1" node address stays the loopback
    address instead of being swapped for the machine's routable one, and the servers listen there. The constant
    is set too in case Ray was imported already; child processes read the variable.

    >>> loopback_only(); os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]
    '0'
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        setattr(constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010 — a module Ray reads the flag from


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: float | None = None,
                num_gpus: float | None = None) -> Iterator[ModuleType]:
    """Ray, connected for the ``with`` block: a running session is used as it is (and left running); otherwise
    ``address`` is joined, or without one a private local Ray starts on 127.0.0.1 (this machine's CPUs/GPUs
    unless ``num_cpus``/``num_gpus`` say otherwise) and is shut down at the end.

    >>> with ray_session(num_cpus=2) as ray:  # doctest: +SKIP
    ...     ray.cluster_resources()["CPU"]
    2.0
    """
    ray = require_ray()
    if ray.is_initialized():  # a notebook's, a test fixture's or an outer caller's session: theirs to stop
        yield ray
        return
    if address is None or address == "local":
        loopback_only()
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 _node_ip_address=LOOPBACK, logging_level=logging.WARNING,
                 _system_config={"task_oom_retries": OOM_RETRIES})
    else:
        if _is_loopback(address):  # else Ray swaps 127.0.0.1 for this machine's routable address
            loopback_only()
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise BlockstitchError(f"cannot reach the Ray cluster at {address!r}: {str(err).splitlines()[0]}"
                                   ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_gpus(device: str, gpus_per_trial: float, what: str = "trial") -> None:
    """Refuse a CUDA run that reserves no GPU: Ray hides every GPU from a task that asks for none, so it would
    fail on every node. One line, before anything starts.

    >>> check_gpus("cuda", 0)
    Traceback (most recent call last):
    blockstitch.errors.SpecError: device 'cuda' on Ray needs --gpus-per-trial > 0 …
    """
    if device.startswith("cuda") and gpus_per_trial <= 0:
        raise SpecError(f"device '{device}' on Ray needs --gpus-per-trial > 0: Ray hides the GPUs from a {what} "
                        "that reserves none", hint="--gpus-per-trial 1 (a whole GPU), or 0.5 to share one")


def _is_loopback(address: str) -> bool:
    """Whether a cluster address names this machine's loopback interface (``127.0.0.1:6379``,
    ``ray://localhost:10001``, ``[::1]:6379``)."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def as_completed(refs: list[Any], poll_s: float = 1.0, tick: Callable[[], None] | None = None
                 ) -> Generator[tuple[int, Any, BaseException | None], None, None]:
    """``(index, value, error)`` for each Ray task as it finishes, in finishing order. A task that raised (or
    whose worker died more often than its retries allow) gives its error instead of a value. When the caller
    stops early (Ctrl-C, an exception, ``break``), every task still pending is cancelled: nothing runs on.
    ``tick()`` is called between waits (at least every ``poll_s`` seconds), e.g. to relay progress.

    >>> [i for i, value, error in as_completed([task.remote(x) for x in "ab"])]  # doctest: +SKIP
    [1, 0]
    """
    ray = require_ray()
    pending = {ref: i for i, ref in enumerate(refs)}
    try:
        while pending:
            # a bounded wait, so Ctrl-C reaches the driver promptly
            done, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            if tick is not None:
                tick()
            for ref in done:
                index = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayError as err:
                    yield index, None, err
                else:
                    yield index, value, None
    finally:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 — already finished or its node gone: nothing left to stop
                pass


def error_line(err: BaseException) -> str:
    """One line for a Ray error: the task's own exception when it raised, else what Ray says happened."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
