"""Does the module run at this size (and width), with which output? The probe behind the sweeps (see
``sweep.py``, which chooses the sizes) and the three verdicts drawn from them: layouts, sizes, channels.

Shapes run for real where the input is cheap (one run gives the shape, finiteness and whether the input was
written to) and on meta tensors elsewhere; once a real run is slow, larger sizes go to meta tensors.

>>> run = next(run_sizes(UnderTest(instance=torch.nn.ReLU()), [SizeTask((2, 3, 4, 4), 3, "b c h w", True)]))
>>> run.how, run.output, run.finite
('real', [2, 3, 4, 4], True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ...meta import meta_call
from ...rules import Rule
from ..report import CheckReport, CheckResult
from .base import first_line, real_run, sample_input, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["SizeTask", "SizeRun", "run_sizes", "SLOW_S", "sizes_verdict", "channels_verdict", "layouts_verdict"]

SLOW_S = 0.1
"""A real sweep run slower than this sends larger sizes to meta tensors (numbers are taken at small sizes)."""
_META_LIMITS = ("meta", "data-dependent", "item()", "Cannot copy out", "nonzero", "tolist", "not implemented")


@dataclass(frozen=True)
class SizeTask:
    """One size to try: the input shape, its channel count and layout; ``real``: run it for real (it is cheap);
    ``fallback``: if meta tensors cannot tell, run it for real anyway (it is not too large)."""

    shape: tuple[int, ...]
    c: int
    layout: str
    real: bool
    fallback: bool = False


@dataclass
class SizeRun:
    """What happened at one size: ``how`` (real, meta, or real because meta could not tell), the output shape
    and type, and from a real run finiteness, in-place writes and warnings; ``error``: the module's words."""

    how: str
    output: list[int] | None = None
    finite: bool | None = None
    wrote_input: bool | None = None
    warnings: list[str] = field(default_factory=list)
    kind: str | None = None
    error: str | None = None
    seconds: float | None = None
    """The forward's wall time (real or meta), the time budget's evidence."""

    def record(self) -> dict[str, Any]:
        """The report's keys, in the report's order (``kind`` only where the module ran)."""
        rec: dict[str, Any] = {"how": self.how, "finite": self.finite, "wrote_input": self.wrote_input,
                               "warnings": self.warnings, "output": self.output,
                               "seconds": None if self.seconds is None else round(self.seconds, 6)}
        if self.error is None:
            rec["kind"] = self.kind
        rec["error"] = self.error
        return rec


def _one(held: UnderTest, task: SizeTask) -> SizeRun:
    shape = task.shape
    run = SizeRun(how="real" if task.real else "meta")
    started: float | None = None
    try:
        module = held.module(shape, task.layout, task.c)
        started = time.perf_counter()
        if task.real and math.prod(shape) <= held.slow_at:
            ran = real_run(module.eval(), sample_input(shape))
            run.seconds = time.perf_counter() - started
            held.real_runs += 1
            if run.seconds > SLOW_S and held.real_runs > 3:  # (the first runs warm up)
                held.slow_at = min(held.slow_at, math.prod(shape))  # larger inputs go to meta tensors
        else:
            run.how = "meta"
            try:
                out = meta_call(module, [torch.empty(shape, device="meta")])
                run.seconds = time.perf_counter() - started
                first = tensors(out)
                if not first:
                    raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
                run.output, run.kind = list(first[0].shape), type(out).__name__
                return run
            except Exception as err:  # noqa: BLE001
                if not (task.fallback and any(s in str(err) for s in _META_LIMITS)):
                    raise
                started = time.perf_counter()
                ran = real_run(module.eval(), sample_input(shape))
                run.seconds, run.how = time.perf_counter() - started, "real (meta could not tell)"
        run.output, run.finite, run.wrote_input = ran.output, ran.finite, ran.wrote_input
        run.warnings, run.kind = ran.warnings, ran.kind
    except Exception as err:  # noqa: BLE001 — the module's own failure at this size is the finding
        run.output, run.kind, run.error = None, None, first_line(err)
        if run.seconds is None and started is not None:  # a forward that fails late still took its time
            run.seconds = time.perf_counter() - started
    return run


def run_sizes(held: UnderTest, items: Sequence[SizeTask]) -> Iterator[SizeRun]:
    """The worker's side of a sweep: does the module run at each size, with which output?"""
    for task in items:
        yield _one(held, task)


def _at(rec: dict[str, Any]) -> str:
    return "×".join(map(str, rec["size"]))


def sizes_verdict(report: CheckReport) -> CheckResult:
    """The size sweep's verdict: the rule, a failing size with the module's own words, and a working one. A rule
    that leaves out only single-pixel inputs (1×1, n = 1: a variance over one pixel is NaN) passes, stated."""
    sweep, rule = report.sweep, report.size_rule
    ran = [r for r in sweep if r["how"] != "not run"]
    bad = [r for r in ran if not r["ok"]]
    good = [r for r in ran if r["ok"]]
    how = sorted({r["how"] for r in ran})
    where = f"{len(ran)} sizes ({', '.join(how)})"
    evidence = {"rule": rule.to_dict(), "failing": [r["size"] for r in bad], "working": [r["size"] for r in good]}
    if len(ran) < len(sweep):  # the time budget stopped the sweep: what ran, and no rule
        return CheckResult("sizes", "skipped", f"{len(ran)} of {len(sweep)} sizes ran: {rule.text}"
                           + (f"; works at {', '.join(map(_at, good[:6]))}" if good else "")
                           + (f"; fails at {_at(bad[0])}: {bad[0]['error']}" if bad else ""), evidence=evidence)
    by_area = sorted(good or sweep, key=lambda r: r["input"])
    if not bad:
        return CheckResult("sizes", "passed", f"{where}: works at every size, {_at(by_area[0])} to "
                           f"{_at(by_area[-1])}", evidence=evidence)
    if good and all(math.prod(r["size"]) == 1 for r in bad):
        return CheckResult("sizes", "passed", f"{where}: {rule.text}, {_at(by_area[0])} to {_at(by_area[-1])};"
                           f" only at {_at(bad[0])}: {bad[0]['error']}", evidence=evidence)
    return CheckResult("sizes", "failed", f"{where}: {rule.text}; e.g. at {_at(bad[0])}: {bad[0]['error']}"
                       + (f"; works at {_at(good[0])}" if good else ""), evidence=evidence)


def channels_verdict(sweep: list[dict[str, Any]], rule: Rule, size: tuple[int, ...]) -> CheckResult:
    """The channel sweep's verdict at ``size`` (not required: the width is the caller's choice)."""
    bad = [r for r in sweep if not r["ok"]]
    return CheckResult(
        "channels", "failed" if bad else "passed",
        f"{len(sweep)} widths at {'×'.join(map(str, size))}: {rule.text}"
        + (f"; e.g. c={bad[0]['size'][0]}: {bad[0]['error']}" if bad else ""), required=False,
        evidence={"rule": rule.to_dict(), "failing": [r["size"][0] for r in bad]})


def layouts_verdict(layouts: dict[str, str]) -> CheckResult:
    """Which of the layouts tried work (``layout → "works"`` or its first error)."""
    working = [k for k, v in layouts.items() if v == "works"]
    if not working and all(v.startswith("not run") for v in layouts.values()):  # the time budget, not the module
        return CheckResult("layouts", "skipped", "; ".join(f"{k}: {v}" for k, v in layouts.items()))
    if working:  # a layout that runs while reading another axis as channels is said too: it is a trap
        wrong = "".join(f"; {k} {v}" for k, v in layouts.items() if v.startswith("runs but"))
        return CheckResult("layouts", "passed", "works with " + ", ".join(working) + wrong)
    if len(set(layouts.values())) == 1:  # one cause everywhere (a constructor that needs a GPU): said once
        return CheckResult("layouts", "failed", f"no layout works ({', '.join(layouts)}): "
                           + next(iter(layouts.values())))
    return CheckResult("layouts", "failed", "no layout works: " + "; ".join(f"{k}: {v}" for k, v in layouts.items()))
