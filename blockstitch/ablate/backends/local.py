"""This machine: trials one after another in this process (``workers=1``) or in a pool of spawned processes.

With ``workers=N`` each trial runs in a fresh-started (``spawn``) worker process — no state forked from the
driver — and its epochs are reported back through a queue; rows come back to the driver, which writes them.
A worker process that dies (killed, out of memory) breaks the pool: the trials still running or waiting come
back as failed rows that say so, and the next run of the same command retries them (from their checkpoints).

>>> LocalBackend(workers=2).run(jobs, on_result=write_row)
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..trial import TrialJob, run_trial

if TYPE_CHECKING:  # types only: the package imports this module (get_backend), not the other way round
    from . import OnProgress, OnResult

__all__ = ["LocalBackend"]

_QUEUE: Any = None


def _reporter(key: str, send: Any) -> Any:
    from ...train.reporter import Reporter

    class Forward(Reporter):  # type: ignore[misc,valid-type]
        """Sends each finished epoch to the driver."""

        def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            send(key, int(epoch), int(epochs), {k: float(v) for k, v in metrics.items()})

    return Forward()


def _init(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _run_in_worker(job: TrialJob) -> dict[str, Any]:
    def send(key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if _QUEUE is not None:
            _QUEUE.put((key, epoch, epochs, metrics))

    return run_trial(job, _reporter(job.key, send))


@dataclass
class LocalBackend:
    """``workers=1``: in this process, in order; ``workers=N``: a pool of N spawned processes."""

    workers: int = 1

    def run(self, jobs: list[TrialJob], on_result: OnResult, on_progress: OnProgress | None = None) -> None:
        """Run every job; rows come back to ``on_result`` in this process as trials finish."""
        if self.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                def send(key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
                    if on_progress is not None:
                        on_progress(key, epoch, epochs, metrics)

                on_result(job, run_trial(job, _reporter(job.key, send)))
            return
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        stop = threading.Event()

        def drain() -> None:  # epochs reported by workers, shown by the driver
            import queue as queues

            while not stop.is_set():
                try:
                    item = queue.get(timeout=0.1)
                except queues.Empty:
                    continue
                except (EOFError, OSError):  # pragma: no cover — the queue went away at shutdown
                    return
                if on_progress is not None:
                    on_progress(*item)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx, initializer=_init,
                                       initargs=(queue,))
            try:
                pending: dict[Future[dict[str, Any]], TrialJob] = {pool.submit(_run_in_worker, j): j for j in jobs}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = pending.pop(future)
                        try:
                            row = future.result()
                        except Exception as err:  # noqa: BLE001 — the worker died: this trial failed, others go on
                            row = _died(job, err)
                        on_result(job, row)
            except BaseException:  # Ctrl-C or a failing callback: stop the workers now, not after their trials
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        finally:
            stop.set()
            reader.join(timeout=2)
            queue.close()

    def __repr__(self) -> str:
        return f"LocalBackend(workers={self.workers})"


def _died(job: TrialJob, err: BaseException) -> dict[str, Any]:
    return {"key": job.key, "variant": job.variant, "seed": job.seed, "digest": job.digest, "status": "failed",
            "metrics": {}, "error": f"the worker process died: {type(err).__name__}: {err}", "epochs": 0,
            "seconds": 0.0, "resumed_from_epoch": None}
