"""The sweep on Ray (``blockstitch sweep FILE --backend ray``): each combination is a Ray task with declared
resources; this process (the driver) appends every row to the same JSONL file, with the same fields, as the
tasks finish. A worker or node that dies mid-measurement is retried (bounded); Ctrl-C cancels what is running,
and the next run measures only what is missing.

Concurrent measurements share their node: give each one whole CPUs (``cpus_per_trial``, which also sets its
torch threads) or a whole GPU when the numbers are the point; fractions trade accuracy for throughput.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from ..progress import ProgressLike, as_progress
from ..raycluster import as_completed, check_gpus, error_line, ray_session
from . import BenchResult, bench
from .trial import measure, per_block_times

if TYPE_CHECKING:
    from .sweep import SweepSpec

__all__ = ["MAX_RETRIES", "measure_on_ray"]

MAX_RETRIES = 2
"""Times a measurement is started again after its worker process or node died."""


def _threads(cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, math.floor(cpus)))  # what the task declared, not what the node has


def _measure_task(combo: dict[str, Any], spec: SweepSpec, runner: Callable[..., BenchResult],
                  cpus: float) -> dict[str, Any]:
    _threads(cpus)
    return measure(combo, spec, runner)


def _blocks_task(spec: SweepSpec, cpus: float) -> dict[str, Any]:
    _threads(cpus)
    return per_block_times(spec)


def measure_on_ray(todo: list[dict[str, Any]], spec: SweepSpec, write: Callable[[dict[str, Any]], None],
                   progress: ProgressLike = None,
                   runner: Callable[..., BenchResult] = bench, *, per_block: bool = False,
                   address: str | None = None, cpus_per_trial: float = 1.0,
                   gpus_per_trial: float = 0.0) -> dict[str, Any] | None:
    """Measure ``todo`` as Ray tasks; ``write(row)`` in this process for each, in finishing order. Returns the
    per-block times when ``per_block`` (timed in a task of its own), else None.

    >>> measure_on_ray(todo, spec, rows.append, address="auto", gpus_per_trial=1)  # doctest: +SKIP
    """
    check_gpus(spec.device, gpus_per_trial, "measurement")
    with ray_session(address) as ray:
        options = {"num_cpus": cpus_per_trial, "num_gpus": gpus_per_trial, "max_retries": MAX_RETRIES}
        task = ray.remote(_measure_task).options(**options)
        refs = [task.remote(combo, spec, runner, cpus_per_trial) for combo in todo]
        if per_block:  # timed in a task of its own, on a worker like the rest
            refs.append(ray.remote(_blocks_task).options(**options).remote(spec, cpus_per_trial))
        blocks, done = None, 0
        shown = as_progress(progress)
        shown.start(len(todo), f"measuring {len(todo)} combinations on Ray")
        with closing(as_completed(refs)) as results:  # closed (Ctrl-C too): what still runs is cancelled
            for i, entry, err in results:
                if i == len(todo):
                    blocks = entry if err is None else {t: [{"error": error_line(err)}] for t in spec.targets}
                    continue
                combo = todo[i]
                if err is not None:  # the task itself could not run (retries spent): a row that says why
                    entry = {"error": error_line(err), **combo}
                write(entry)
                done += 1
                shown.advance(f"measured {combo['target']} b{combo['batch']} {combo['dtype']} {combo['mode']} "
                              f"({done}/{len(todo)})")
        shown.done()
        return blocks
