"""The few statistics the table needs over seeds: mean ± std and a paired 95 % interval (Student's t). Small,
exact and deterministic (no scipy). Latency ratios come from :mod:`blockstitch.spread`, like every timing.

>>> paired_ci([0.80, 0.82], [0.84, 0.85])          # (mean Δ, low, high) over seeds paired by index
(0.035, -0.0285..., 0.0985...)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["mean_std", "t975", "paired_ci"]

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
"""Two-sided 95 % quantiles of Student's t for 1 … 30 degrees of freedom."""


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (normal beyond 30: 1.96 … 2.04)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    return 1.959964 + 2.4 / df  # within 0.003 of the exact value for df > 30


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired_ci(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the paired differences ``other[i] - base[i]`` and its 95 % t interval (NaN bounds for one pair)."""
    diffs = [o - b for b, o in zip(base, other)]
    if not diffs:
        return math.nan, math.nan, math.nan
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return mean, math.nan, math.nan
    half = t975(len(diffs) - 1) * std / math.sqrt(len(diffs))
    return mean, mean - half, mean + half
