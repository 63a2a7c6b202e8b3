"""Warnings: what the module warned about in its real runs (reported, not required; nothing new runs)."""

from __future__ import annotations

from ..report import CheckReport, CheckResult
from .base import Check, Evidence
from .modes import Modes

__all__ = ["Warned"]


class Warned(Check[None, None]):
    """No warning in the sweep's real runs or the train/eval runs."""

    name = "warnings"
    order = 70

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        modes = found.of(Modes)
        warned = list(dict.fromkeys(w for r in report.sweep for w in r.get("warnings") or []))
        warned += [w for a in modes if a.value is not None for w in a.value.warnings if w not in warned]
        runs = sum(1 for r in report.sweep if r.get("finite") is not None) + len(modes)
        return CheckResult(self.name, "failed" if warned else "passed",
                           "; ".join(warned[:3]) + f" (in {runs} real runs)" if warned else
                           f"no warning in {runs} real runs", required=False)
