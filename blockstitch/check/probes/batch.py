"""Batch independence: each sample's output alone equals its output inside a batch of 3 (eval)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, rel_diff, sample_input, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["BatchRun", "BatchIndependence"]


@dataclass
class BatchRun:
    """The largest relative difference between three samples run together and one by one."""

    rel_diff: float


class BatchIndependence(Check[At, BatchRun]):
    """A sample's output does not depend on the other samples in its batch (required)."""

    name = "batch independence (eval)"
    order = 30

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> BatchRun:
        module = module_at(held, task)
        x = sample_input((3, *task.shape[1:]), 2)
        with torch.no_grad():
            together = tensors(module(x.clone()))[0]
            alone = torch.cat([tensors(module(x[i:i + 1].clone()))[0] for i in range(3)])
        return BatchRun(rel_diff(alone, together))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        answer = found.one(BatchIndependence)
        at = fmt_shape(found.at.shape[1:])
        if answer is None or answer.value is None:
            return CheckResult(self.name, "skipped", f"could not run at {at}: {answer.error if answer else None}")
        rel = answer.value.rel_diff
        ok = rel == rel and rel <= 1e-4
        report.batch_independent = ok
        return CheckResult(
            self.name, "passed" if ok else "failed",
            f"each sample's output alone equals its output in a batch of 3 (max rel. diff {rel:.1e}, eval, {at})"
            if ok else f"a sample's output changes with the other samples in the batch (max rel. diff {rel:.2e} "
                       f"between batch of 3 and one by one, eval, {at}): statistics are taken across the batch",
            evidence={"rel_diff": rel, "batch": 3, "mode": "eval", "input": list(found.at.shape[1:])})
