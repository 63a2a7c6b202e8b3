"""torch.export on a copy (reported, not required; only when asked: ``check_module(export=True)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ...meta import real_copy
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, reference

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["TorchExport"]


class TorchExport(Check[At, None]):
    """The module exports with torch.export at the base input (its own time limit: exporting is slow)."""

    name = "torch.export"
    order = 110
    limit_s = 120.0

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at] if found.export else []

    def run(self, held: UnderTest, task: At) -> None:
        module = module_at(held, task)
        x, _ = reference(module, task)
        torch.export.export(real_copy(module), (x,))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        answer = found.one(TorchExport)
        if answer is None:
            return None
        at = fmt_shape(report.base or ())
        return CheckResult(self.name, "failed", f"at {at}: {answer.error}", required=False) if answer.error else \
            CheckResult(self.name, "passed", f"exports at {at}", required=False)
