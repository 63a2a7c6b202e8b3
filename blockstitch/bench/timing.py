"""The timing method: warm up until timings settle, then repeat until the median is stable or the time budget
is spent. On CPU each repetition is timed with `perf_counter`, optionally after a write that flushes the caches.

On CUDA each sample is timed with its own pair of device events, samples are queued in rounds and read after
one synchronisation, and a sample of a call shorter than :data:`GROUP_MS` times a group of back-to-back calls
(divided by their number), as a loop runs them. Timing single calls between events, each followed by a
synchronisation, would charge every sample the host's launch latency that a loop hides and the event records'
own cost: 1.2-1.6x the amortised time of 30-100 us kernels on an H200. ``flush_l2`` times single calls, each
after a write that flushes the L2 cache."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..progress import ProgressLike, as_progress
from ..spread import Spread, quantile

__all__ = ["Timing", "measure", "settle", "interleaved", "GROUP_MS", "MIN_REPS"]

MIN_REPS = 6
"""The fewest samples whose order-statistic interval for the median reaches 95 % (n = 5 reaches 93.75 %)."""

GROUP_MS = 1.0
"""On CUDA a sample spans at least this long: shorter calls are timed in groups (see the module's text)."""


@dataclass
class Timing:
    """Per-repetition times (ms) and the summary the reports use."""

    samples_ms: list[float]
    warmup_reps: int
    calls_per_sample: int = 1
    """Back-to-back calls each sample timed (CUDA, short calls); its time is divided by this."""

    @property
    def median_ms(self) -> float:
        """Median time of one call."""
        return statistics.median(self.samples_ms)

    @property
    def spread(self) -> Spread:
        """Median, p10/p90 and the 95 % confidence interval of the median (:class:`blockstitch.spread.Spread`).

        >>> Timing([1.0, 2.0, 3.0], 0).spread.ci_low
        1.0
        """
        return Spread.of(self.samples_ms)

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1) of the samples (:func:`blockstitch.spread.quantile`)."""
        return quantile(self.samples_ms, q)


class _Flusher:
    """Writes a buffer larger than the last-level cache, so each repetition starts cold."""

    def __init__(self, device: torch.device, nbytes: int) -> None:
        self.buffer = torch.empty(nbytes // 4, dtype=torch.float32, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


def _timer(device: torch.device) -> Callable[[Callable[[], object], Callable[[], None] | None], float]:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def cuda_once(fn: Callable[[], object], flush: Callable[[], None] | None) -> float:
            if flush is not None:
                flush()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)

        return cuda_once

    def cpu_once(fn: Callable[[], object], flush: Callable[[], None] | None) -> float:
        if flush is not None:
            flush()
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    return cpu_once


def settle(fn: Callable[[], object], device: torch.device, max_reps: int = 50, max_seconds: float = 30.0,
           window: int = 3, tolerance: float = 0.05, progress: ProgressLike = None) -> int:
    """Warm up (compilation, cudnn autotuning, allocator growth happen here) until ``window`` consecutive
    times agree within ``tolerance``; returns how many calls that took. ``progress`` hears of each call, after
    it (:mod:`blockstitch.progress`)."""
    once = _timer(device)
    times: list[float] = []
    shown = as_progress(progress)
    shown.start(None, "warm-up")
    t_end = time.perf_counter() + max_seconds
    while len(times) < max_reps and time.perf_counter() < t_end:
        times.append(once(fn, None))
        shown.advance(f"warm-up ({len(times)} calls)")
        if len(times) >= window + 1:  # the first call (compile, autotune) never counts as settled
            last = times[-window:]
            if max(last) <= (1 + tolerance) * min(last):
                break
    shown.done()
    return len(times)


def _cuda_round(fn: Callable[[], object], reps: int, flush: Callable[[], None] | None,
                calls: int = 1) -> list[float]:
    """``reps`` samples queued back to back, each between its own events (``calls`` calls per sample, per call
    time returned); one synchronisation."""
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for start, end in pairs:
        if flush is not None:
            flush()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
    pairs[-1][1].synchronize()
    return [start.elapsed_time(end) / calls for start, end in pairs]


def measure(fn: Callable[[], object], device: torch.device, budget_s: float = 2.0, min_reps: int = MIN_REPS,
            max_reps: int = 1000, flush_l2: bool = False, progress: ProgressLike = None) -> Timing:
    """Warm up, then time repetitions until the median changes by < 1% over the last fifth of the samples
    (at least ``min_reps``), the time budget is spent, or ``max_reps`` is reached. On CUDA samples run in
    rounds (5, 10, 20, … up to 100) with one synchronisation each, calls shorter than :data:`GROUP_MS` in
    groups. ``progress`` hears of each warm-up call and each sample (or round), between them, never inside the
    timed region (:mod:`blockstitch.progress`)."""
    shown = as_progress(progress)
    warm = settle(fn, device, progress=shown)
    flush = _Flusher(device, 256 * 2**20 if device.type == "cuda" else 64 * 2**20) if flush_l2 else None
    calls = 1
    if device.type == "cuda":
        if flush is None:
            single = statistics.median(_cuda_round(fn, min_reps, None))
            calls = max(1, min(1000, math.ceil(GROUP_MS / max(single, 1e-6))))

        def take(k: int) -> list[float]:
            return _cuda_round(fn, k, flush, calls)

        size, largest = min_reps, 100
    else:
        once = _timer(device)

        def take(k: int) -> list[float]:
            return [once(fn, flush)]

        size = largest = 1
    samples: list[float] = []
    shown.start(None, f"timing (budget {budget_s:g} s)")
    t_end = time.perf_counter() + budget_s
    checked = 0
    while len(samples) < max_reps:
        samples += take(min(size, max_reps - len(samples)))
        shown.advance(f"timing ({len(samples)} reps, budget {budget_s:g} s)")
        size = min(2 * size, largest)
        n = len(samples)
        if n >= min_reps and time.perf_counter() > t_end:
            break
        if n >= max(min_reps, 20) and n - checked >= 10:  # every tenth sample (CPU), every round (CUDA)
            checked = n
            earlier = statistics.median(samples[: n - n // 5])
            if abs(statistics.median(samples) - earlier) <= 0.01 * earlier:
                break
    shown.done()
    return Timing(samples, warm, calls)


def interleaved(fns: list[Callable[[], object]], device: torch.device, rounds: int = 30) -> list[list[float]]:
    """Paired timings of several callables: each is warmed up (:func:`settle`), then ``rounds`` rounds each time
    every callable once, the order reversed every other round (ABBA), so drift in clocks and caches falls on all
    of them alike. Returns one list of ``rounds`` times (ms) per callable; sample ``r`` of each is paired.

    >>> base, variant = interleaved([run_base, run_variant], torch.device("cpu"), rounds=20)
    """
    for fn in fns:
        settle(fn, device, max_reps=20, max_seconds=10.0)
    once = _timer(device)
    samples: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for r in range(rounds):
        for i in (order if r % 2 == 0 else order[::-1]):
            samples[i].append(once(fns[i], None))
    return samples
