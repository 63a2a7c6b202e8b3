"""Input left unchanged: no real run (the sweep's, train/eval's) wrote into the tensor it was given (judged
only; nothing new runs)."""

from __future__ import annotations

from ..report import CheckReport, CheckResult
from .base import Check, Evidence
from .modes import Modes

__all__ = ["InputUnchanged"]


class InputUnchanged(Check[None, None]):
    """The module does not write into its input in place (required)."""

    name = "input left unchanged"
    order = 40

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        sweep, modes = report.sweep, [a for a in found.of(Modes) if a.value is not None]
        seen = [f"eval, batch 2, {'×'.join(map(str, r['size']))}" for r in sweep if r.get("wrote_input")]
        seen += [a.task.label for a in modes if a.value and a.value.wrote_input]
        ran = any(r.get("wrote_input") is not None for r in sweep) or bool(modes)
        report.writes_input = bool(seen) if ran else None
        runs = sum(1 for r in sweep if r.get("wrote_input") is not None) + len(modes)
        return CheckResult(
            self.name, "failed" if seen else "passed" if ran else "skipped",
            f"the module writes into its input (in place) at {'; '.join(seen[:4])}" if seen else
            f"none of {runs} real runs changed its input" if ran else "no real run (0 runs)",
            evidence={"writes_at": seen})
