"""The Ray backend (``blockstitch ablate FILE --backend ray``): each trial is a Ray task with declared resources,
on a private local Ray (127.0.0.1, this machine's CPUs/GPUs) or on the cluster at ``address``.

What it promises, and how:

- **Same numbers.** A task calls :func:`blockstitch.ablate.trial.run_trial`, the one function every backend
  calls, with the same job; only where it runs changes.
- **Node or worker death.** Ray starts the task again (at most ``max_retries`` times); ``run_trial`` finds the
  trial's last epoch checkpoint in its directory (the run directory: a path every node shares) and goes on from
  there. Retries spent, the trial is a failed row that says so.
- **A trial that fails by itself** (an exception, OOM, a NaN loss) is a failed row from ``run_trial``; it does
  not raise, so Ray never retries it (application errors are not retried: ``retry_exceptions`` stays off).
- **One writer.** Results come back to the driver, which calls ``on_result`` once per job; rows are written
  there only. Ctrl-C cancels every running task; the rows already written stay and the next run resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

from ...errors import SpecError
from ...raycluster import as_completed, check_gpus, error_line, ray_session, require_ray
from ..trial import TrialJob, run_trial

__all__ = ["RayBackend"]


class _Mailbox:
    """A Ray actor the trials post their epoch progress to; the driver drains it between results."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, int, dict[str, float]]] = []

    def put(self, key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        self.items.append((key, epoch, epochs, metrics))

    def drain(self) -> list[tuple[str, int, int, dict[str, float]]]:
        items, self.items = self.items, []
        return items


def _trial_task(job: TrialJob, function: Callable[..., dict[str, Any]], mailbox: Any) -> dict[str, Any]:
    """What runs on a worker: the job through ``function`` (``run_trial``), posting epochs to ``mailbox``."""
    if mailbox is None:
        return function(job)
    from ...train.reporter import Reporter

    class Posting(Reporter):
        def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            mailbox.put.remote(job.key, epoch, epochs, dict(metrics))  # fire and forget: progress is best effort

    return function(job, Posting())


def _mailbox(ray: Any) -> Any:
    """The progress actor, on the driver's own node (a worker node may go, taking an actor with it), restarted
    if it dies anyway; it reserves no CPU."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(num_cpus=0, max_restarts=3, scheduling_strategy=here)(_Mailbox).remote()


def failed_row(job: TrialJob, error: str, seconds: float) -> dict[str, Any]:
    """The row of a trial Ray could not finish (its worker or node died more often than the retries allow)."""
    return {"key": job.key, "variant": job.variant, "seed": job.seed, "digest": job.digest, "status": "failed",
            "metrics": {}, "error": error, "epochs": 0, "seconds": round(seconds, 3), "resumed_from_epoch": None}


class RayBackend:
    """Trials as Ray tasks: ``cpus_per_trial``/``gpus_per_trial`` declared (fractions allowed), ``max_retries``
    restarts after a worker or node death, results handed to the driver.

    >>> RayBackend(None, cpus_per_trial=1, gpus_per_trial=0).run(jobs, on_result=store.write)  # doctest: +SKIP
    """

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 max_retries: int = 3, *, num_cpus: float | None = None, num_gpus: float | None = None,
                 function: Callable[..., dict[str, Any]] = run_trial) -> None:
        require_ray()  # without Ray: one line now, before the driver starts anything
        if cpus_per_trial < 0 or gpus_per_trial < 0 or not 0 <= max_retries <= 100:
            raise SpecError("cpus/gpus per trial must be ≥ 0 and max_retries in 0..100",
                            found=f"cpus {cpus_per_trial}, gpus {gpus_per_trial}, retries {max_retries}")
        self.address = address
        self.cpus_per_trial, self.gpus_per_trial, self.max_retries = cpus_per_trial, gpus_per_trial, max_retries
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        """A local Ray's size (None: this machine's); ignored when joining a cluster."""
        self.function = function
        """What a task calls with the job: ``run_trial`` (a stand-in in tests)."""

    def run(self, jobs: list[TrialJob], on_result: Callable[[TrialJob, dict[str, Any]], None],
            on_progress: Callable[[str, int, int, dict[str, float]], None] | None = None) -> None:
        """Run every job; ``on_result(job, row)`` here, once per job, as each finishes. Returns when all have."""
        if not jobs:
            return
        for device in sorted({job.device for job in jobs}):
            check_gpus(device, self.gpus_per_trial)
        with ray_session(self.address, num_cpus=self.num_cpus, num_gpus=self.num_gpus) as ray:
            mailbox = _mailbox(ray) if on_progress is not None else None
            task = ray.remote(_trial_task).options(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                                   max_retries=self.max_retries, retry_exceptions=False)
            started = time.perf_counter()
            refs = [task.remote(job, self.function, mailbox) for job in jobs]

            def relay() -> None:  # epoch progress posted by the trials, in the driver (best effort)
                if mailbox is None or on_progress is None:
                    return
                try:
                    items = ray.get(mailbox.drain.remote(), timeout=30)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    return  # the mailbox is being restarted: progress lost, results never are
                for item in items:
                    on_progress(*item)

            with closing(as_completed(refs, tick=relay)) as results:  # closed: what still runs is cancelled
                for i, row, err in results:
                    if err is not None:
                        row = failed_row(jobs[i], f"{error_line(err)} (after {self.max_retries} retries)"
                                         if _died(ray, err) else error_line(err), time.perf_counter() - started)
                    on_result(jobs[i], row)
            relay()


def _died(ray: Any, err: BaseException) -> bool:
    """Whether Ray gave up on a task because its process or node kept dying (not because it raised)."""
    died = tuple(getattr(ray.exceptions, name) for name in ("WorkerCrashedError", "NodeDiedError",
                                                            "LocalRayletDiedError", "OutOfMemoryError")
                 if hasattr(ray.exceptions, name))
    return isinstance(err, died)
