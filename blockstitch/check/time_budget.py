"""The whole check's time budget, and the finding it leads to: "too slow: 0.50 s per forward at 1×1".

A check makes about ``FORWARDS`` forwards (the size sweep's sizes, the channel widths, the probes at the base
size). A module whose forward takes longer than ``budget / FORWARDS`` cannot be checked in the budget: once two
forwards in a row are that slow, the check stops there and says so, with the seconds it measured and the size,
instead of running into the budget (or, without one, for minutes). A module just under that speed still ends
within the budget: the worker stops waiting when the budget is spent, and the slowest forward seen is named
(one stopped by the budget counts with the time it had run: "more than 1.20 s").

>>> clock = TimeBudget(2.0)
>>> clock.observe({"seconds": 0.5, "size": [1, 1], "input": [2, 64, 1, 1]})
False
>>> clock.observe({"seconds": 0.5, "size": [2, 2], "input": [2, 64, 2, 2]}), clock.too_slow.text()
(True, 'too slow: 0.50 s per forward at 2×2 (input 2×64×2×2, measured)')
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .report import CheckResult

__all__ = ["FORWARDS", "TimeBudget", "TooSlow", "time_verdict"]

FORWARDS = 30
"""About how many forwards a check needs: one forward may take at most ``budget / FORWARDS`` seconds."""


@dataclass
class TooSlow:
    """Why the check stopped early: ``seconds`` per forward (measured, or the per-probe limit it ran past when
    ``measured`` is False) at ``size`` (the swept size) for ``input`` (the whole input shape)."""

    seconds: float
    size: list[int]
    input: list[int]
    budget: float
    measured: bool = True

    def text(self) -> str:
        """``too slow: 0.50 s per forward at 2×2 (input 2×64×2×2, measured)``."""
        if not self.size:
            return f"too slow: no forward ended within the check's budget ({self.budget:g} s)"
        at = "×".join(map(str, self.size))
        shape = "×".join(map(str, self.input))
        how = "measured" if self.measured else "stopped there"
        return f"too slow: {'' if self.measured else 'more than '}{self.seconds:.2f} s per forward at {at} " \
               f"(input {shape}, {how})"

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: seconds per forward, size, input, budget, measured."""
        return {"seconds_per_forward": round(self.seconds, 4), "size": self.size, "input": self.input,
                "budget_s": self.budget, "measured": self.measured}


class TimeBudget:
    """The budget of one check (seconds from now) and what it found: ``too_slow`` once a forward is too slow
    for it (two in a row over ``per_forward``), else None."""

    def __init__(self, seconds: float, forwards: int = FORWARDS) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.per_forward = seconds / forwards
        self.too_slow: TooSlow | None = None
        self._over = 0
        self._slowest: dict[str, Any] | None = None

    def left(self) -> float:
        """Seconds left (negative once spent)."""
        return self.deadline - time.monotonic()

    def observe(self, record: dict[str, Any]) -> bool:
        """Note one sweep record's forward time (``record["seconds"]``); True when the check should stop here."""
        seconds = record.get("seconds")
        if self.too_slow is not None:
            return True
        if seconds is None:
            return False
        if self._slowest is None or seconds > self._slowest["seconds"]:
            self._slowest = record
        self._over = self._over + 1 if seconds > self.per_forward else 0
        if self._over >= 2:
            self.too_slow = self._finding(record)
        return self.too_slow is not None

    def stopped(self) -> TooSlow | None:
        """Why the check stops (or stopped) early: a forward too slow for the budget, or the budget spent (the
        slowest forward seen is the reason); None while there is time."""
        if self.too_slow is None and self.left() <= 0:
            self.too_slow = self._finding(self._slowest) if self._slowest else TooSlow(self.seconds, [], [],
                                                                                        self.seconds, False)
        return self.too_slow

    def _finding(self, record: dict[str, Any]) -> TooSlow:
        measured = record.get("how") not in ("isolated", "not run")  # else: stopped there, a lower bound
        return TooSlow(float(record["seconds"]), list(record["size"]), list(record["input"]), self.seconds,
                       measured)


def time_verdict(slow: TooSlow, skipped: list[str]) -> list[CheckResult]:
    """The check that failed for lack of time ("too slow: …", required: nothing after it was seen) and one
    "skipped" line, with that reason, for each check in ``skipped``."""
    rest = f"; {len(skipped)} checks not run" if skipped else ""
    verdict = CheckResult("time budget", "failed", f"{slow.text()}; the check's budget is {slow.budget:g} s"
                          f" (--time-budget){rest}", evidence=slow.to_dict())
    return [verdict] + [CheckResult(name, "skipped", f"not run: {slow.text()}") for name in skipped]
