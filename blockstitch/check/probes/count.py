"""Parameters and MACs at the base input, through the profiler's counter (a finding, not a verdict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, reference

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["Counted", "Count"]


@dataclass
class Counted:
    """Parameters, and MACs for one forward at the base input (-1: the counter could not count it)."""

    params: int
    macs: int


class Count(Check[At, Counted]):
    """Sets ``report.params`` and ``report.macs_at``; adds no line to the report."""

    name = "count"
    order = 85

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> Counted:
        from ...profile import profile

        module = module_at(held, task)
        reference(module, task)  # one eager forward first, as every numbers check makes (lazy modules initialise)
        params = sum(p.numel() for p in module.parameters())
        try:
            macs = profile(module, task.shape[1:], batch=task.shape[0]).macs
        except Exception:  # noqa: BLE001 — an uncountable module still gets its other checks
            macs = -1
        return Counted(params, macs)

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        answer = found.one(Count)
        if answer is not None and answer.value is not None:
            report.params = answer.value.params
            report.macs_at = {"input": list(found.at.shape), "macs": answer.value.macs}
        return None
