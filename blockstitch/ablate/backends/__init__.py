"""Where trials run: the :class:`Backend` protocol and :func:`get_backend`.

A backend runs every job (in any order) through :func:`blockstitch.ablate.trial.run_trial`, calls ``on_result``
in the driver's process once per finished job (the driver writes the row), may call ``on_progress(key, epoch,
epochs, metrics)`` as epochs end, and does not return before every job has a result.

>>> get_backend("local", workers=2).run(jobs, on_result=lambda job, row: print(row["status"]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ...errors import SpecError
from ..trial import TrialJob

__all__ = ["Backend", "get_backend", "OnResult", "OnProgress", "BACKENDS"]

OnResult = Callable[[TrialJob, dict[str, Any]], None]
OnProgress = Callable[[str, int, int, dict[str, float]], None]
BACKENDS = ("local", "ray")


class Backend(Protocol):
    """Runs trial jobs; see the module's text for the promises."""

    def run(self, jobs: list[TrialJob], on_result: OnResult, on_progress: OnProgress | None = None) -> None:
        """Run every job; ``on_result`` once per job, in the calling process."""


def get_backend(name: str, **options: Any) -> Backend:
    """A backend by name: ``local`` (``workers``) or ``ray`` (``address``, ``cpus_per_trial``, ``gpus_per_trial``,
    ``max_retries``). Options a backend does not take are ignored.

    >>> get_backend("local", workers=1)
    LocalBackend(workers=1)
    """
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(int(options.get("workers") or 1))
    if name == "ray":
        try:
            from .ray_backend import RayBackend
        except ImportError as err:
            raise SpecError(f"the ray backend is not available: {err}",
                            hint="pip install 'blockstitch[ray]', or use --backend local") from None
        keys = ("address", "cpus_per_trial", "gpus_per_trial", "max_retries")
        return RayBackend(**{k: options[k] for k in keys if options.get(k) is not None})  # type: ignore[return-value]
    raise SpecError(f"unknown backend '{name}'", expected=", ".join(BACKENDS))
