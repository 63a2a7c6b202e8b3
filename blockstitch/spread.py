"""The spread of repeated measurements, so that no timing travels without it.

:class:`Spread` summarises samples as their median, p10/p90 and a confidence interval for the median from order
statistics (distribution-free: the interval between the j-th smallest and the j-th largest sample covers the
median with a probability the binomial distribution gives exactly). :func:`paired_ratio` compares two series
timed in pairs (round ``i`` of each, as :func:`blockstitch.bench.timing.interleaved` takes them) as the median of
the per-pair ratios with the same kind of interval, and says "within noise" when that interval holds 1.
:func:`scaled` writes a rate with a prefix that fits (``12.3 GFLOP/s``, never ``0.000 TFLOP/s``);
:func:`warnings_for` says when a spread is too wide to quote, or the machine was loaded while it was measured.

>>> s = Spread.of([4.1, 4.0, 4.3, 4.2, 4.0, 4.1, 4.5, 4.1])
>>> s.text("ms")
'4.10 ms (p10–p90 4.00–4.36, 95 % CI 4.00–4.50, n=8)'
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import asdict, dataclass, replace

__all__ = ["Spread", "Ratio", "quantile", "median_ci", "paired_ratio", "scaled", "fit_digits", "warnings_for",
           "load_warning", "WIDE"]

WIDE = 1.5
"""A spread is called wide when p90 is more than this many times p10."""


def quantile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``samples``, interpolated linearly between order statistics."""
    ordered = sorted(samples)
    pos = q * (len(ordered) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _binom_cdf(k: int, n: int) -> float:
    """P(B ≤ k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n


def median_ci(samples: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """A confidence interval for the median: ``(low, high, coverage)``.

    The interval is ``[x_(j), x_(n+1-j)]`` with the largest ``j`` whose exact coverage ``1 - 2·P(B ≤ j-1)`` is at
    least ``level``. Under six samples no such ``j`` exists for 95 %: the interval is then the whole range and the
    returned coverage (``1 - 2^(1-n)``) says how much less than ``level`` it is.
    """
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    best = 1
    for j in range(1, n // 2 + 1):
        if 1 - 2 * _binom_cdf(j - 1, n) >= level:
            best = j
        else:
            break
    coverage = 1 - 2 * _binom_cdf(best - 1, n) if n > 1 else 0.0
    return ordered[best - 1], ordered[n - best], coverage


@dataclass(frozen=True)
class Spread:
    """Median, p10/p90 and a confidence interval for the median of ``n`` samples."""

    n: int
    median: float
    p10: float
    p90: float
    ci_low: float
    ci_high: float
    coverage: float
    """The interval's exact coverage (0.95 or a little more; less only under six samples)."""

    @classmethod
    def of(cls, samples: list[float], level: float = 0.95) -> Spread:
        """The spread of ``samples`` (at least one)."""
        lo, hi, cov = median_ci(samples, level)
        return cls(len(samples), statistics.median(samples), quantile(samples, 0.1), quantile(samples, 0.9),
                   lo, hi, cov)

    @property
    def ratio_p90_p10(self) -> float:
        """p90 / p10 (inf when p10 is 0)."""
        return self.p90 / self.p10 if self.p10 > 0 else math.inf

    @property
    def wide(self) -> bool:
        """Whether p90 is more than :data:`WIDE` times p10."""
        return self.ratio_p90_p10 > WIDE

    def as_dict(self, prefix: str = "") -> dict[str, float | int]:
        """The fields as a flat dict for JSON rows, each key prefixed (``latency_ms_`` → ``latency_ms_p10``…)."""
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}

    @property
    def ci_label(self) -> str:
        """``'95 % CI'``, or the interval's real coverage when fewer samples cannot reach 95 % (``'75 % CI'``)."""
        return f"{round(100 * self.coverage)} % CI" if self.coverage < 0.95 else "95 % CI"

    def text(self, unit: str = "", digits: int | None = 2) -> str:
        """``'4.10 ms (p10–p90 4.00–4.36, 95 % CI 4.00–4.50, n=8)'``; ``digits=None`` fits the decimals to the
        median (:func:`fit_digits`)."""
        u = f" {unit}" if unit else ""
        f = f".{fit_digits(self.median) if digits is None else digits}f"
        ci = self.ci_label
        return (f"{self.median:{f}}{u} (p10–p90 {self.p10:{f}}–{self.p90:{f}}, {ci} {self.ci_low:{f}}–"
                f"{self.ci_high:{f}}, n={self.n})")


@dataclass(frozen=True)
class Ratio:
    """A paired ratio (variant / base) with its confidence interval."""

    estimate: float
    ci_low: float
    ci_high: float
    coverage: float
    n: int
    noise_low: float = 1.0
    noise_high: float = 1.0
    """The band of ratios that shows no difference: 1, widened by :meth:`against` to what two copies of the same
    network read against each other (copies differ by a few per cent in where their weights sit in memory)."""

    @property
    def within_noise(self) -> bool:
        """Whether the interval meets the noise band (1, or the copies' band): no difference shown."""
        return self.ci_low <= self.noise_high and self.ci_high >= self.noise_low

    def against(self, floor: Ratio) -> Ratio:
        """This ratio judged against ``floor``, the ratio of a second copy of the baseline to the baseline: the
        noise band becomes the hull of 1 and the floor's interval."""
        return replace(self, noise_low=min(1.0, floor.ci_low), noise_high=max(1.0, floor.ci_high))

    @property
    def pct(self) -> float:
        """The change in percent (``+3.1`` for a ratio of 1.031)."""
        return 100 * (self.estimate - 1)

    def text(self) -> str:
        """``'+3.1 % [+0.4, +6.2]'`` or ``'+0.8 % [−1.2, +2.9], within noise'``; an interval under 95 % (fewer
        than six pairs) says so: ``'+5.0 % [+2.0, +9.0] (75 % interval, n=3)'``."""
        s = f"{self.pct:+.1f} % [{100 * (self.ci_low - 1):+.1f}, {100 * (self.ci_high - 1):+.1f}]"
        if self.coverage < 0.95:
            s += f" ({round(100 * self.coverage)} % interval, n={self.n})"
        return s + ", within noise" if self.within_noise else s

    def as_dict(self, prefix: str = "") -> dict[str, float | int | bool]:
        """The fields (and ``within_noise``) for JSON rows, each key prefixed."""
        d: dict[str, float | int | bool] = {f"{prefix}{k}": v for k, v in asdict(self).items()}
        d[f"{prefix}within_noise"] = self.within_noise
        return d


def paired_ratio(base: list[float], variant: list[float], level: float = 0.95) -> Ratio:
    """The median of ``variant[i] / base[i]`` over pairs, with a confidence interval from order statistics.

    Pairs taken in the same round share that round's clock, cache and load, so their ratio cancels drift that
    would widen a ratio of two independent medians.
    """
    if len(base) != len(variant) or not base:
        raise ValueError(f"paired_ratio needs two equally long, non-empty series (got {len(base)} and "
                         f"{len(variant)})")
    ratios = [v / b for b, v in zip(base, variant, strict=True) if b > 0]
    if not ratios:
        raise ValueError("paired_ratio: every base sample is 0")
    lo, hi, cov = median_ci(ratios, level)
    return Ratio(statistics.median(ratios), lo, hi, cov, len(ratios))


def fit_digits(value: float, significant: int = 3) -> int:
    """Decimals that show ``value`` with at least ``significant`` significant figures, and at least two:
    ``fit_digits(4.1)`` → 2, ``fit_digits(0.0123)`` → 4, ``fit_digits(123.0)`` → 2."""
    if value == 0 or not math.isfinite(value):
        return 2
    return max(2, significant - 1 - int(math.floor(math.log10(abs(value)))))


_PREFIXES = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]


def scaled(value: float, unit: str, digits: int = 3) -> str:
    """``value`` with an SI prefix that keeps ``digits`` significant figures: ``scaled(2.3e9, 'FLOP/s')`` →
    ``'2.30 GFLOP/s'``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor:
            v = value / factor
            decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
            return f"{v:.{decimals}f} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def load_warning(busy: float = 0.75, own: float = 1.0) -> str | None:
    """A warning when the 1-minute load average, less ``own`` (the threads the timing itself kept busy: torch's
    intra-op threads), exceeds ``busy`` × the CPU count (None where unknown)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = os.cpu_count() or 1
    if load - own > busy * cores:
        return (f"machine loaded: load average {load:.1f} on {cores} cores while timing; other work shares the "
                "cores, so these timings are noisy (re-run on a quiet machine before quoting them)")
    return None


def warnings_for(spread: Spread, what: str = "timing", load: bool = True, own: float = 1.0) -> list[str]:
    """Warnings to print beside ``spread``: a wide spread, and (unless ``load`` is False, for a caller that says
    it once for many timings) a loaded machine, beyond the ``own`` threads the timing kept busy."""
    out = []
    if spread.wide:
        out.append(f"wide spread for {what}: p90 is {spread.ratio_p90_p10:.1f}× p10 over {spread.n} samples; "
                   "quote the median with its interval, or re-run with more repetitions on a quieter machine")
    busy = load_warning(own=own) if load else None
    if busy:
        out.append(busy)
    return out
