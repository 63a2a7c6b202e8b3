"""What `check_module` found, as plain records: each claim with its evidence (the size, the mode, the numbers).

>>> report = check_module("se", axes={"c": 16})
>>> report.ok, report.size_rule.kind, report.batch_independent
(True, 'any', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..rules import Constraint, Rule

__all__ = ["CheckResult", "CheckReport", "first_line", "NO_GPU"]


@dataclass
class CheckResult:
    """One check: passed, failed or skipped, why (with the evidence), and whether the verdict needs it."""

    name: str
    status: str
    message: str
    required: bool = True
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckReport:
    """Everything `check_module` found. ``sweep``: one record per size tried (``size``, ``input``, ``ok``,
    ``output``, ``error``, ``how`` real/meta, ``finite``, ``wrote_input``); ``size_rule``/``channel_rule``:
    the rule that predicts every record; the findings are ``None`` where they could not be determined."""

    target: str
    layout: str | None
    layouts: dict[str, str]
    checks: list[CheckResult]
    size_rule: Rule
    params: int = 0
    macs_at: dict[str, Any] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    channel_rule: Rule | None = None
    channel_sweep: list[dict[str, Any]] = field(default_factory=list)
    base: list[int] | None = None
    """The input (batch included) the numbers were taken at."""
    modes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``"train, batch 1"`` → ``{"error": None or the module's words, "finite", "wrote_input"}``."""
    batch_independent: bool | None = None
    writes_input: bool | None = None
    ignores_input: bool | None = None
    dead_params: list[str] | None = None
    nonfinite: list[str] = field(default_factory=list)
    """Where outputs held NaN/Inf: ``"eval, batch 2, 1×1"``."""
    isolation: dict[str, int] = field(default_factory=dict)
    too_slow: dict[str, Any] | None = None
    """Why the check stopped before the end (see ``time_budget.TooSlow.to_dict``), else None."""

    @property
    def ok(self) -> bool:
        """Plug-and-play: every required check passed."""
        return all(c.status != "failed" for c in self.checks if c.required)

    @property
    def constraints(self) -> list[Constraint]:
        """The size rule as constraints (empty for any size or no simple rule)."""
        return self.size_rule.constraints()

    def check(self, name: str) -> CheckResult | None:
        """The check called ``name`` (None if it was not run)."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: verdict, checks with evidence, rules, the sweeps and the findings."""
        return {"target": self.target, "ok": self.ok, "layout": self.layout, "layouts": self.layouts,
                "checks": [{"name": c.name, "status": c.status, "message": c.message, "required": c.required,
                            "evidence": c.evidence} for c in self.checks],
                "constraints": [{"axis": c.axis, "rule": c.rule, "value": c.value} for c in self.constraints],
                "size_rule": self.size_rule.to_dict(),
                "channel_rule": self.channel_rule.to_dict() if self.channel_rule else None,
                "params": self.params, "macs_at": self.macs_at, "sweep": self.sweep,
                "channel_sweep": self.channel_sweep, "base": self.base, "modes": self.modes,
                "batch_independent": self.batch_independent, "writes_input": self.writes_input,
                "ignores_input": self.ignores_input, "dead_params": self.dead_params, "nonfinite": self.nonfinite,
                "too_slow": self.too_slow}


NO_GPU = ("Found no NVIDIA driver", "Torch not compiled with CUDA", "No CUDA GPUs are available",
          "no CUDA-capable device", "CUDA driver initialization failed")
"""The words torch uses when code asks for CUDA (``.cuda()``, ``device="cuda"``) on a machine without a GPU."""


def first_line(err: BaseException) -> str:
    """``TypeName: first line of the message`` — the module's own words; when it asked for a GPU that is not
    there (or that a forked worker cannot use), that cause is said first.

    >>> first_line(RuntimeError("Found no NVIDIA driver on your system. Please check that you have …"))
    'needs CUDA, and this machine has no GPU (RuntimeError: Found no NVIDIA driver on your system)'
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    words = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if "needs CUDA" in text:  # said already (a construction failure, quoted again)
        return words
    if "Cannot re-initialize CUDA in forked subprocess" in text:
        return (f"needs CUDA, which the check's forked worker cannot use: the calling process had asked the driver "
                f"first (torch.cuda.is_available() does) — check it in a fresh process ({words})")
    if any(s in text for s in NO_GPU):
        return f"needs CUDA, and this machine has no GPU ({type(err).__name__}: {text.split('. ')[0].rstrip('.')})"
    return words
