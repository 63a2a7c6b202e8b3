"""float16 on CUDA (reported, not required). It runs in the worker like every other check: the worker decides
whether there is a GPU. The caller never asks — ``torch.cuda.is_available()`` asks the driver, and after that a
forked worker cannot use CUDA at all (a module that calls ``.cuda()`` in its constructor would then fail with
"Cannot re-initialize CUDA in forked subprocess" instead of running). Only where the caller has initialised CUDA
itself (so no worker can use it anyway) does the run happen in the caller, on a copy, under the time limit.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...meta import real_copy
from ..report import CheckReport, CheckResult, first_line
from ..time_limit import time_limit
from .base import At, Check, Evidence, module_at

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["HalfRan", "HalfOnCuda"]


BAD_FORK = ("CUDA unusable in the worker: the calling process asked the driver before the check forked "
            "(torch.cuda.is_available() does); ask in a child process, or set PYTORCH_NVML_BASED_CUDA_CHECK=1")


@dataclass
class HalfRan:
    """``skipped``: why it did not run (no GPU, or CUDA unusable in the worker); ``caller``: because the caller
    had touched CUDA (if it has initialised CUDA itself, the run is made there); else it ran."""

    skipped: str | None = None
    caller: bool = False


class HalfOnCuda(Check[At, HalfRan]):
    """A float16 copy on the GPU runs at the base input."""

    name = "float16 (CUDA)"
    order = 120

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> HalfRan:
        if torch.cuda._is_in_bad_fork():  # the caller had asked the driver (or used CUDA) before the check forked
            return HalfRan(BAD_FORK, caller=True)
        if not torch.cuda.is_available():
            return HalfRan("no CUDA device (0 found)")
        module = real_copy(module_at(held, task)).cuda().half().eval()
        with torch.no_grad():
            module(torch.randn(task.shape, device="cuda", dtype=torch.half))
        return HalfRan()

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        answer = found.one(HalfOnCuda)
        shown = "×".join(map(str, found.at.shape))
        if answer is None:
            return CheckResult(self.name, "skipped", "not run", required=False)
        if answer.value is None:
            return CheckResult(self.name, "failed", f"at {shown}: {answer.error}", required=False)
        if answer.value.caller and torch.cuda.is_initialized():  # the caller uses CUDA already: nothing to spoil
            return _in_caller(self.name, found, shown)
        if answer.value.skipped:
            return CheckResult(self.name, "skipped", answer.value.skipped, required=False)
        return CheckResult(self.name, "passed", f"runs at {shown}", required=False)


def _in_caller(name: str, found: Evidence, shown: str) -> CheckResult:
    """The float16 run in the caller (which has initialised CUDA itself), on a copy, under the time limit."""
    at = found.at
    try:
        held = found.held
        module = real_copy(held.instance) if held.instance is not None else held.module(at.shape, at.layout, at.c)
        quiet = io.StringIO()  # a module that prints must not write into the caller's output (JSON on stdout)
        with time_limit(found.settings.seconds), torch.no_grad(), redirect_stdout(quiet), redirect_stderr(quiet):
            module.cuda().half().eval()(torch.randn(at.shape, device="cuda", dtype=torch.half))
        return CheckResult(name, "passed", f"runs at {shown}", required=False)
    except Exception as err:  # noqa: BLE001 — reported, not required
        return CheckResult(name, "failed", f"at {shown}: {first_line(err)}", required=False)
