"""torch.compile(fullgraph=True) on a copy, with the backend asked for (reported, not required; only when asked:
``check_module(compile=True)``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ...meta import real_copy
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, reference

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["CompileTask", "TorchCompile"]


@dataclass(frozen=True)
class CompileTask:
    """Compile at ``at`` with ``backend``."""

    at: At
    backend: str


class TorchCompile(Check[CompileTask, None]):
    """The module compiles as one graph (its own time limit: compiling is slow)."""

    name = "torch.compile"
    order = 100
    limit_s = 120.0

    def tasks(self, found: Evidence) -> list[CompileTask]:
        return [CompileTask(found.at, found.backend)] if found.compile else []

    def run(self, held: UnderTest, task: CompileTask) -> None:
        module = module_at(held, task.at)
        x, _ = reference(module, task.at)
        torch._dynamo.reset()
        compiled = torch.compile(real_copy(module), fullgraph=True, backend=task.backend)
        with torch.no_grad():
            compiled(x)

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        answer = found.one(TorchCompile)
        if answer is None:
            return None
        name, at = f"torch.compile(fullgraph=True, backend={found.backend})", fmt_shape(report.base or ())
        return CheckResult(name, "failed", f"at {at}: {answer.error}", required=False) if answer.error else \
            CheckResult(name, "passed", f"compiles as one graph at {at}", required=False)
