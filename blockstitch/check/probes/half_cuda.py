"""float16 on CUDA (reported, not required). A forked worker cannot use CUDA once the caller has, so this one
runs in the caller, on a copy, under the time limit (a crash in a CUDA kernel is the one failure not contained)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import torch

from ...meta import real_copy
from ..report import CheckReport, CheckResult
from ..time_limit import time_limit
from .base import Check, Evidence

__all__ = ["HalfOnCuda"]


class HalfOnCuda(Check[None, None]):
    """A float16 copy on the GPU runs at the base input (no task for the worker: it runs while judged)."""

    name = "float16 (CUDA)"
    order = 120

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        if not torch.cuda.is_available():
            return CheckResult(self.name, "skipped", "no CUDA device (0 found)", required=False)
        at = found.at
        shown = "×".join(map(str, at.shape))
        try:
            held = found.held
            if held.instance is not None:
                module = real_copy(held.instance)
            elif held.factory is not None:
                module = held.factory(at.shape, at.layout, at.c)
            else:
                raise TypeError("nothing under test")
            quiet = io.StringIO()  # a module that prints must not write into the caller's output (JSON on stdout)
            with time_limit(found.settings.seconds), torch.no_grad(), redirect_stdout(quiet), redirect_stderr(quiet):
                out = module.cuda().half().eval()(torch.randn(at.shape, device="cuda", dtype=torch.half))
            del module, out
            return CheckResult(self.name, "passed", f"runs at {shown}", required=False)
        except Exception as err:  # noqa: BLE001 — reported, not required
            return CheckResult(self.name, "failed", f"at {shown}: {type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}", required=False)
