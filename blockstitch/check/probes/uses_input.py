"""Uses its input: the output changes with the input, or at least a gradient reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, rel_diff, sample_input, tensors
from .gradients import input_gets_gradient

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["TwoInputs", "UsesInput"]


@dataclass
class TwoInputs:
    """The outputs for two different inputs: identical or not, and their largest relative difference."""

    same: bool
    rel_diff: float


class UsesInput(Check[At, TwoInputs]):
    """The output depends on the input (required)."""

    name = "uses its input"
    order = 60

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> TwoInputs:
        module = module_at(held, task)
        x1, x2 = sample_input(task.shape, 3), sample_input(task.shape, 4) * 2 + 1
        with torch.no_grad():
            o1, o2 = tensors(module(x1.clone())), tensors(module(x2.clone()))
        return TwoInputs(all(torch.equal(a, b) for a, b in zip(o1, o2)), rel_diff(o1[0], o2[0]))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        answer = found.one(UsesInput)
        input_grad = input_gets_gradient(found)
        at = fmt_shape(found.at.shape[1:])
        if answer is None or answer.value is None or input_grad is None:
            return CheckResult(self.name, "skipped", f"could not run at {at}: {answer.error if answer else None}")
        value = answer.value
        ignored = bool(value.same) and not input_grad
        report.ignores_input = ignored
        return CheckResult(
            self.name, "failed" if ignored else "passed",
            f"the output is the same for two different inputs and no gradient reaches the input (eval/train, {at})"
            if ignored else f"the output follows the input (rel. change {value.rel_diff:.1e} for a new input; "
                            f"gradient reaches the input: {'yes' if input_grad else 'no'}; {at})",
            evidence={"same_output": value.same, "input_grad": input_grad, "input": list(found.at.shape[1:])})
