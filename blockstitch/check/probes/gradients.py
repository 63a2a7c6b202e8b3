"""Gradients: in train and in eval mode, does every parameter get a non-zero gradient at one of a few sizes (and
does the input)?

Up to four working real sizes: the base, the smallest, the largest up to four times the base's input, and a
non-square one, each in train and in eval mode. A parameter no gradient reaches at any of them in either mode —
or whose gradient is exactly zero at every one (a query projection whose softmax sees a single key) — is
structurally dead. One used in a single mode (``if not self.training: x = x * self.p``) is alive, and the report
says in which mode it gets its gradient. A gradient that is zero only
because a parameter starts at zero is not: where some gradient is all zero, the backward is run once more on a
copy whose all-zero parameters (a zero-initialised gate or scale) are given small random values, so the branch
behind a zero gate is alive, and so is the gate (its own gradient is non-zero).
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
    """One backward pass at ``at`` in train (else eval) mode; ``base``: at the size the numbers are taken at."""

    at: At
    base: bool
    train: bool = True

    @property
    def mode(self) -> str:
        """``"train"`` or ``"eval"``."""
        return "train" if self.train else "eval"


@dataclass
class GradRun:
    """The parameters a non-zero gradient reached, the trainable ones, whether the input got a gradient, and
    the parameters any gradient reached (non-zero or not)."""

    alive: list[str]
    trainable: list[str]
    input_grad: bool
    reached: list[str] | None = None


def _backward(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[list[str], list[str], bool]:
    """One backward pass: (parameters with a non-zero gradient, parameters any gradient reached, input's)."""
    module.zero_grad(set_to_none=True)
    with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller left on
        leaf = sample_input(shape, 6).requires_grad_(True)
        out = [t for t in tensors(module(leaf * 1)) if t.is_floating_point() and t.requires_grad]
        if out:
            sum(t.float().square().mean() for t in out).backward()  # type: ignore[union-attr]
    reached = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is not None]
    # NaN counts as non-zero: a non-finite gradient is another check's finding, not a dead parameter
    alive = [n for n, p in module.named_parameters()
             if p.requires_grad and p.grad is not None and bool(p.grad.count_nonzero())]
    return alive, reached, leaf.grad is not None


def _unzeroed(module: torch.nn.Module) -> torch.nn.Module:
    """A copy whose all-zero floating parameters hold small reproducible random values instead."""
    from ...meta import real_copy

    copy = real_copy(module)
    with torch.no_grad():
        for i, p in enumerate(copy.parameters()):
            if p.requires_grad and p.is_floating_point() and p.numel() and not bool(p.count_nonzero()):
                gen = torch.Generator(device=p.device).manual_seed(1000 + i)
                p.copy_(torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype) * 0.1)
    return copy


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
            at = At(tuple(r["input"]), r["c"], layout)
            tasks += [GradTask(at, r is base, train) for train in (True, False)]
    return tasks


class Gradients(Check[GradTask, GradRun]):
    """No structurally dead parameter (required)."""

    name = "gradients"
    order = 50
    backward = True

    def tasks(self, found: Evidence) -> list[GradTask]:
        return grad_tasks(found.sweep, found.base, found.at.layout)

    def run(self, held: UnderTest, task: GradTask) -> GradRun:
        module = held.copy("grad", task.at.c, module_at(held, task.at, train=True)).train(task.train)
        shape = tuple(task.at.shape)
        alive, reached, input_grad = _backward(module, shape)
        trainable = [n for n, p in module.named_parameters() if p.requires_grad]
        if set(reached) - set(alive):  # a zero gradient: zero by structure, or only because a gate starts at 0?
            again, _, _ = _backward(_unzeroed(module).train(task.train), shape)
            alive = [n for n in trainable if n in set(alive) | set(again)]
        return GradRun(alive, trainable, input_grad, reached)

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        modes: dict[str, set[str]] = {}  # parameter → the modes it got a non-zero gradient in
        reached: set[str] = set()
        trainable: list[str] = []
        sizes: list[str] = []
        errors, base_error = [], False
        for answer in found.of(Gradients):
            at = fmt_shape(answer.task.at.shape[1:])
            if answer.value is None:
                errors.append(f"{at} ({answer.task.mode}): {answer.error}")
                base_error = base_error or (answer.task.base and answer.task.train)
                continue
            sizes += [at] if at not in sizes else []
            for name in answer.value.alive:
                modes.setdefault(name, set()).add(answer.task.mode)
            reached |= set(answer.value.reached if answer.value.reached is not None else answer.value.alive)
            trainable = answer.value.trainable
        if not sizes or base_error:
            return CheckResult(self.name, "failed", "backward fails (train, batch 2): " + "; ".join(errors),
                               evidence={"errors": errors})
        dead = [n for n in trainable if n not in modes]
        report.dead_params = dead
        tried = f"{', '.join(sizes)} (train and eval, batch 2)"
        unreached = [n for n in dead if n not in reached]
        zero = [n for n in dead if n in reached]
        one_mode = {m: [n for n in trainable if modes.get(n) == {m}] for m in ("train", "eval")}
        said = []
        if unreached:
            said.append(f"no gradient reaches {_names(unreached)}")
        if zero:
            said.append(f"the gradient of {_names(zero)} is exactly zero (also with zero-valued parameters "
                        "made non-zero)")
        only = "".join(f"; only in {m}: {_names(ns)}" for m, ns in one_mode.items() if ns)
        return CheckResult(
            self.name, "failed" if dead else "passed",
            f"{'; '.join(said)} at every one of {tried}: structurally dead{only}" if dead else
            f"every parameter ({len(trainable)}) gets a non-zero gradient at one of {tried}{only}",
            evidence={"dead": dead, "no_gradient": unreached, "zero_gradient": zero, "sizes": sizes,
                      "modes": {n: sorted(modes.get(n, ())) for n in trainable}, "errors": errors})


def _names(names: list[str]) -> str:
    return ", ".join(names[:8]) + (" …" if len(names) > 8 else "")


def input_gets_gradient(found: Evidence) -> bool | None:
    """Whether a gradient reached the input at the base size (None: backward failed there)."""
    answer = next((a for a in found.of(Gradients) if a.task.base and a.task.train), None)
    return answer.value.input_grad if answer is not None and answer.value is not None else None
