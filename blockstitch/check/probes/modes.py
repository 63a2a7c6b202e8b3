"""Train and eval at batch 1 and 2: does the module run in both modes, at both batch sizes?

Training runs change running statistics, so they run on a copy made once; eval runs on the module itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, Ran, module_at, real_run, sample_input

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["MODES", "ModeTask", "Modes"]

MODES = [("train", 2), ("train", 1), ("eval", 2), ("eval", 1)]


@dataclass(frozen=True)
class ModeTask:
    """One forward in ``train`` (else eval) mode at batch ``batch``, the other dimensions those of ``at``."""

    at: At
    train: bool
    batch: int

    @property
    def label(self) -> str:
        """``"train, batch 2"``: the report's key."""
        return f"{'train' if self.train else 'eval'}, batch {self.batch}"


class Modes(Check[ModeTask, Ran]):
    """Runs in train and eval at batch 1 and 2 (required)."""

    name = "train and eval, batch 1 and 2"
    order = 10

    def tasks(self, found: Evidence) -> list[ModeTask]:
        return [ModeTask(found.at, mode == "train", batch) for mode, batch in MODES]

    def run(self, held: UnderTest, task: ModeTask) -> Ran:
        module = module_at(held, task.at, train=True)
        if task.train:  # training runs change running statistics: on a copy made once
            module = held.copy("train", task.at.c, module)
        return real_run(module, sample_input((task.batch, *task.at.shape[1:]), 1), train=task.train)

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        at = fmt_shape(found.at.shape[1:])
        failures = []
        for answer in found.of(Modes):
            ran = answer.value
            report.modes[answer.task.label] = {"error": answer.error, "finite": ran.finite if ran else None,
                                               "wrote_input": ran.wrote_input if ran else None}
            if answer.error:
                failures.append(f"{answer.task.label}: {answer.error}")
        return CheckResult(self.name, "failed" if failures else "passed",
                           "; ".join(failures) + f" (input {at})" if failures else
                           f"runs in train and eval at batch 1 and 2 (input {at})",
                           evidence={"input": list(found.at.shape[1:]), "modes": report.modes})
