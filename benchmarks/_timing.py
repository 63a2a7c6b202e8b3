"""Side-by-side timing helpers for the benchmark scripts (paired, interleaved runs; no absolute targets)."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Comparison", "compare", "machine"]


@dataclass
class Comparison:
    """Median seconds of each side and the median of the paired per-repetition ratios a/b."""

    a: float
    b: float
    ratio: float
    spread: tuple[float, float]
    """Quartiles (25%, 75%) of the paired ratios: the resolution of this measurement on this machine."""


def compare(a: Callable[[], object], b: Callable[[], object], reps: int = 7, warmup: int = 1) -> Comparison:
    """Time ``a`` and ``b`` back to back, ABBA order, and compare them pair by pair.

    A ratio of medians is at the mercy of a noisy neighbour; the median of paired ratios (each pair run
    within a second of each other) is far steadier on a shared machine.
    """
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for rep in range(reps):
        for which in ((0, 1) if rep % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            (a if which == 0 else b)()
            (ta if which == 0 else tb).append(time.perf_counter() - t0)
    ratios = [x / y for x, y in zip(ta, tb)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return Comparison(statistics.median(ta), statistics.median(tb), statistics.median(ratios), (q[0], q[2]))


def machine() -> str:
    """One line naming the machine the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"python {platform.python_version()}")
