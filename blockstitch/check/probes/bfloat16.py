"""bfloat16 on the CPU: a bfloat16 copy runs and gives finite numbers (reported, not required)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ...meta import real_copy
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, reference, rel_diff, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["HalfRun", "BFloat16"]


@dataclass
class HalfRun:
    """A lower-precision run: finite or not, and its largest relative difference to float32."""

    finite: bool
    rel_diff: float


class BFloat16(Check[At, HalfRun]):
    """A bfloat16 copy of the module on a bfloat16 input."""

    name = "bfloat16 (CPU)"
    order = 80

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> HalfRun:
        module = module_at(held, task)
        x, ref = reference(module, task)
        with torch.no_grad():
            out = tensors(real_copy(module).to(torch.bfloat16)(x.to(torch.bfloat16)))[0]
        return HalfRun(bool(torch.isfinite(out).all()), rel_diff(out, ref))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        answer = found.one(BFloat16)
        if answer is None:
            return None
        if answer.value is None:
            return CheckResult(self.name, "failed", f"at {fmt_shape(report.base or ())}: {answer.error}",
                               required=False)
        ok = answer.value.finite
        return CheckResult(self.name, "passed" if ok else "failed", f"runs (rel. diff to float32 "
                           f"{answer.value.rel_diff:.1e})" + ("" if ok else ", but gives NaN/Inf"), required=False)
