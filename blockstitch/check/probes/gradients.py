"""Gradients: in train mode, does every parameter get a gradient at one of a few sizes (and the input)?

Up to four working real sizes: the base, the smallest, the largest up to four times the base's input, and a
non-square one. A parameter no gradient reaches at any of them is structurally dead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, sample_input, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["GradTask", "GradRun", "Gradients"]


@dataclass(frozen=True)
class GradTask:
    """One backward pass at ``at``; ``base``: at the size the numbers are taken at."""

    at: At
    base: bool


@dataclass
class GradRun:
    """The parameters a gradient reached, the trainable ones, and whether the input got one."""

    alive: list[str]
    trainable: list[str]
    input_grad: bool


def grad_tasks(records: list[dict[str, Any]], base: dict[str, Any], layout: str) -> list[GradTask]:
    """The base, the smallest, the largest (up to four times the base's input) and a non-square working size."""
    real = [r for r in records if r["ok"] and r["how"].startswith("real")
            and math.prod(r["input"]) <= 4 * math.prod(base["input"])]
    squares = [r for r in real if len(set(r["size"])) == 1]
    picks = [base] + squares[:1] + squares[-1:] + [r for r in real if len(set(r["size"])) > 1][:1]
    seen, tasks = set(), []
    for r in picks:
        if tuple(r["size"]) not in seen:
            seen.add(tuple(r["size"]))
            tasks.append(GradTask(At(tuple(r["input"]), r["c"], layout), r is base))
    return tasks


class Gradients(Check[GradTask, GradRun]):
    """No structurally dead parameter (required)."""

    name = "gradients"
    order = 50
    backward = True

    def tasks(self, found: Evidence) -> list[GradTask]:
        return grad_tasks(found.sweep, found.base, found.at.layout)

    def run(self, held: UnderTest, task: GradTask) -> GradRun:
        module = held.copy("grad", task.at.c, module_at(held, task.at, train=True)).train()
        module.zero_grad(set_to_none=True)
        with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller left on
            leaf = sample_input(task.at.shape, 6).requires_grad_(True)
            out = [t for t in tensors(module(leaf * 1)) if t.is_floating_point() and t.requires_grad]
            if out:
                sum(t.float().square().mean() for t in out).backward()  # type: ignore[union-attr]
        alive = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is not None]
        trainable = [n for n, p in module.named_parameters() if p.requires_grad]
        return GradRun(alive, trainable, leaf.grad is not None)

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        alive: set[str] = set()
        trainable: list[str] = []
        sizes, errors, base_error = [], [], False
        for answer in found.of(Gradients):
            at = fmt_shape(answer.task.at.shape[1:])
            if answer.value is None:
                errors.append(f"{at}: {answer.error}")
                base_error = base_error or answer.task.base
                continue
            sizes.append(at)
            alive |= set(answer.value.alive)
            trainable = answer.value.trainable
        if not sizes or base_error:
            return CheckResult(self.name, "failed", "backward fails (train, batch 2): " + "; ".join(errors),
                               evidence={"errors": errors})
        dead = [n for n in trainable if n not in alive]
        report.dead_params = dead
        tried = ", ".join(sizes)
        return CheckResult(
            self.name, "failed" if dead else "passed",
            f"no gradient reaches {', '.join(dead[:8])}{' …' if len(dead) > 8 else ''} at any of {tried} (train, "
            f"batch 2): structurally dead" if dead else
            f"every parameter ({len(trainable)}) gets a gradient at one of {tried} (train, batch 2)",
            evidence={"dead": dead, "sizes": sizes, "errors": errors})


def input_gets_gradient(found: Evidence) -> bool | None:
    """Whether a gradient reached the input at the base size (None: backward failed there)."""
    answer = next((a for a in found.of(Gradients) if a.task.base), None)
    return answer.value.input_grad if answer is not None and answer.value is not None else None
