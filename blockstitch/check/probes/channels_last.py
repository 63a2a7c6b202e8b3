"""channels_last: a copy in channels_last memory format gives the contiguous result (reported, not required;
4-d ``b c h w`` inputs only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import fmt_shape
from ...meta import real_copy
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, reference, rel_diff, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["SameResult", "ChannelsLast"]


@dataclass
class SameResult:
    """Equal within tolerance to the contiguous float32 result, and the largest relative difference."""

    same: bool
    rel_diff: float


class ChannelsLast(Check[At, SameResult]):
    """The module in channels_last memory format on a channels_last input."""

    name = "channels_last"
    order = 90

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at] if found.at.layout == "b c h w" else []

    def run(self, held: UnderTest, task: At) -> SameResult:
        module = module_at(held, task)
        x, ref = reference(module, task)
        with torch.no_grad():
            cl = real_copy(module).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            out = tensors(cl(x.contiguous(memory_format=torch.channels_last)))[0]
        return SameResult(bool(torch.allclose(out.float(), ref.float(), rtol=1e-3, atol=1e-4)), rel_diff(out, ref))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        answer = found.one(ChannelsLast)
        if answer is None:
            return CheckResult(self.name, "skipped", f"not a 4-d b c h w input ({found.at.layout})", required=False)
        if answer.value is None:
            return CheckResult(self.name, "failed", f"at {fmt_shape(report.base or ())}: {answer.error}",
                               required=False)
        rel, same = answer.value.rel_diff, answer.value.same
        return CheckResult(self.name, "passed" if same else "failed",
                           f"same result (rel. diff {rel:.1e})" if same else
                           f"result differs from contiguous (rel. diff {rel:.1e})", required=False)
