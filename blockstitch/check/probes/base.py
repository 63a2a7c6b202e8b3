"""What every check shares: the :class:`Check` base (its tasks, what runs in the worker, how it is judged), the
records passed between the caller and the worker, and the helpers that run the module once.

A check is one class in one file of this package: ``tasks`` says what to ask the worker for, ``run`` does one
task there (on the :class:`~blockstitch.check.under_test.UnderTest` the worker holds) and returns a dataclass
record, ``judge`` turns the answers into the report's verdict. Every record crosses the process boundary by
pickle, so records hold plain values (numbers, strings, lists), never tensors.

>>> class Answers42(Check[At, Ran]):
...     name, order = "forty-two", 999
...     def judge(self, found, report): return CheckResult(self.name, "passed", "42", required=False)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import torch
from torch import nn

from ..report import CheckReport, CheckResult, first_line

if TYPE_CHECKING:
    from ..sweep import ProbeSettings
    from ..under_test import UnderTest

__all__ = ["Check", "At", "Ran", "Answer", "Failed", "Evidence", "run_tasks", "outcome", "module_at", "reference",
           "first_line", "tensors", "sample_input", "finite",
           "real_run", "rel_diff"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class At:
    """Where a number is taken: the input shape (batch included), its channel count and its layout."""

    shape: tuple[int, ...]
    c: int
    layout: str


@dataclass(frozen=True)
class Failed:
    """A task that raised in the worker: the module's own words (``TypeName: first line``)."""

    error: str


@dataclass
class Answer(Generic[T, R]):
    """One task and what came of it: ``value`` (the check's record), or ``error`` (the module raised, hung or
    killed its worker, or the check's time budget was spent)."""

    task: T
    value: R | None = None
    error: str | None = None


@dataclass
class Evidence:
    """What the judges see: the base the numbers were taken at, the sweep, the options, every check's answers
    (by class), and what the worker holds (for a check that runs in the caller, on a copy)."""

    at: At
    base: dict[str, Any]
    """The sweep record of the base size (see :attr:`CheckReport.sweep`)."""
    sweep: list[dict[str, Any]]
    """Every size tried (:attr:`CheckReport.sweep`)."""
    settings: ProbeSettings
    held: UnderTest
    compile: bool = False
    export: bool = False
    backend: str = "aot_eager"
    answers: dict[type, list[Answer[Any, Any]]] = field(default_factory=dict)

    def of(self, check: type[Check[T, R]]) -> list[Answer[T, R]]:
        """The answers of ``check`` (empty when it sent no task)."""
        return self.answers.get(check, [])

    def one(self, check: type[Check[T, R]]) -> Answer[T, R] | None:
        """The single answer of a check that sends one task (None when it sent none)."""
        found = self.of(check)
        return found[0] if found else None


class Check(Generic[T, R]):
    """One check of ``check_module``. Subclasses set ``name`` (as reported) and ``order`` (its place in the
    report) and override what they need; a check with no tasks judges what others found.

    ``limit_s``: a slow check's own time limit (at least the probe's); it runs alone, before the others.
    ``backward``: it runs autograd: after the others, and in-process on a copy where a forked child cannot.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    limit_s: ClassVar[float | None] = None
    backward: ClassVar[bool] = False

    def tasks(self, found: Evidence) -> list[T]:
        """What to ask the worker for (in order)."""
        return []

    def run(self, held: UnderTest, task: T) -> R:
        """One task, in the worker. Raising is the module's failure at that task (a :class:`Failed`)."""
        raise NotImplementedError(f"{type(self).__name__} sends no task")

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        """The verdict (None: nothing to report); findings go on ``report``."""
        return None


def run_tasks(held: UnderTest, items: Sequence[tuple[Check[Any, Any], Any]]) -> Any:
    """The worker's side: each ``(check, task)`` run in turn, one record (or :class:`Failed`) each."""
    for check, task in items:
        try:
            yield check.run(held, task)
        except Exception as err:  # noqa: BLE001 — the module's own failure is the finding
            yield Failed(first_line(err))


def tensors(out: Any, depth: int = 0) -> list[torch.Tensor]:
    """Every tensor in an output (tuples, lists and dicts included), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if depth > 3:
        return []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in tensors(o, depth + 1)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in tensors(o, depth + 1)]
    return []


def sample_input(shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """A reproducible random input: the same shape and seed give the same numbers in any process."""
    gen = torch.Generator().manual_seed(seed + sum(i * s for i, s in enumerate(shape, 1)))
    return torch.randn(tuple(shape), generator=gen)


def finite(out: Any) -> bool:
    """No NaN or Inf in any floating-point tensor of an output."""
    return all(bool(torch.isfinite(t).all()) for t in tensors(out) if t.is_floating_point() or t.is_complex())


@dataclass
class Ran:
    """One real forward: the output's shape and type, finiteness, whether it wrote into its input, warnings."""

    output: list[int]
    finite: bool
    wrote_input: bool
    warnings: list[str]
    kind: str


def real_run(module: nn.Module, x: torch.Tensor, train: bool = False) -> Ran:
    """One real forward of a copy of ``x`` (no gradients) in train or eval mode."""
    given = x.clone()
    module.train(train)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        out = module(given)
    first = tensors(out)
    if not first:
        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
    return Ran(list(first[0].shape), finite(out), not torch.equal(given, x),
               [str(w.message).splitlines()[0] for w in caught], type(out).__name__)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference relative to the largest value of ``b``."""
    return float((a.float() - b.float()).abs().max() / (b.float().abs().max() + 1e-12))


def module_at(held: UnderTest, at: At, train: bool = False) -> nn.Module:
    """The module under test for this input, in eval mode (``train``: left as it is, for the caller to set)."""
    module = held.module(at.shape, at.layout, at.c)
    return module if train else module.eval()


def reference(module: nn.Module, at: At) -> tuple[torch.Tensor, torch.Tensor]:
    """The input the numbers are taken with and the module's first output tensor for it (float32, no grad).
    Every check that compares against float32 eager runs it first (it also initialises lazy modules)."""
    x = sample_input(at.shape, 5)
    with torch.no_grad():
        return x, tensors(module(x.clone()))[0]


def outcome(task: T, reply: Any) -> Answer[T, Any]:
    """A worker :class:`~blockstitch.check.worker.Reply` as an :class:`Answer` (the worker's error or the
    module's, else the record)."""
    if not reply.ok:
        return Answer(task, error=reply.error)
    if isinstance(reply.value, Failed):
        return Answer(task, error=reply.value.error)
    return Answer(task, value=reply.value)
