"""No NaN or Inf in any output: over the sweep's real runs and the train/eval runs (judged only; nothing new
runs). NaN/Inf at some sizes only is part of the size rule (see ``sweep.py``) and named here as such."""

from __future__ import annotations

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import Check, Evidence
from .modes import Modes

__all__ = ["FiniteOutputs"]


class FiniteOutputs(Check[None, None]):
    """Finite outputs everywhere a real run was made (required)."""

    name = "finite outputs"
    order = 20

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        at = fmt_shape(found.at.shape[1:])
        nonfinite = [f"eval, batch {r['input'][0]}, {'×'.join(map(str, r['size']))}" for r in report.sweep
                     if r["ok"] and r["finite"] is False]
        nonfinite += [f"{a.task.label}, {at}" for a in found.of(Modes) if a.value is not None and not a.value.finite]
        report.nonfinite = nonfinite
        outside = ["×".join(map(str, r["size"])) for r in report.sweep if not r["ok"] and r["finite"] is False]
        runs = sum(1 for r in report.sweep if r["ok"] and r.get("finite") is not None) + sum(
            1 for m in report.modes.values() if m["finite"] is not None)
        aside = f"; NaN/Inf at {', '.join(outside[:6])} only, outside the size rule: {report.size_rule.text}" \
            if outside else ""
        return CheckResult(self.name, "failed" if nonfinite else "passed",
                           "NaN/Inf at " + "; ".join(nonfinite[:6]) if nonfinite else
                           f"no NaN or Inf in {runs} real runs (the sweep's real sizes in eval at batch "
                           f"2, and train/eval at batch 1 and 2 at {at}){aside}",
                           evidence={"nonfinite": nonfinite, "runs": runs, "outside_size_rule": outside})
