"""Is this module really plug-and-play? Run it across sizes, layouts, batch sizes, modes and dtypes.

>>> report = check_module("cbam", input="b c h w", axes={"c": 64})
>>> report.ok, report.constraints
(True, [])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import SpecError, fmt_shape
from .constraints import Constraint, infer_constraints
from .contract import Pattern, parse_pattern
from .probes import CheckResult, extra_checks, real_checks
from .runner import Outcome, run_meta
from .targets import Factory, parse_args, resolve_target

__all__ = ["check_module", "CheckReport", "CheckResult", "Constraint", "parse_args"]

SQUARE = [1, 7, 14, 15, 28, 31, 56, 57]
NON_SQUARE = [(32, 48), (14, 21), (48, 32)]
TOKENS = [1, 7, 49, 50, 196, 197]
LAYOUTS = ("b c h w", "b n c", "b h w c")


@dataclass
class CheckReport:
    """Everything `check_module` found."""

    target: str
    layout: str | None
    layouts: dict[str, str]
    checks: list[CheckResult]
    constraints: list[Constraint]
    params: int
    macs_at: dict[str, Any]
    sweep: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every required check passed."""
        return all(c.status != "failed" for c in self.checks if c.required)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ok, layout, checks, constraints, params, macs_at (+ layouts and the sweep)."""
        return {"target": self.target, "ok": self.ok, "layout": self.layout, "layouts": self.layouts,
                "checks": [{"name": c.name, "status": c.status, "message": c.message, "required": c.required}
                           for c in self.checks],
                "constraints": [{"axis": c.axis, "rule": c.rule, "value": c.value} for c in self.constraints],
                "params": self.params, "macs_at": self.macs_at, "sweep": self.sweep}


class _Subject:
    """The module under test, built for an input shape on a device (a given instance is reused)."""

    def __init__(self, target: nn.Module | Factory | str, args: dict[str, Any]) -> None:
        self.instance: nn.Module | None = None
        if isinstance(target, nn.Module):
            self.instance, self.label, self.factory = target, type(target).__name__, None
        elif isinstance(target, str):
            self.label, self.factory, _ = resolve_target(target, args)
        elif callable(target):
            self.label, self.factory = getattr(target, "__name__", "factory"), target
        else:
            raise SpecError(f"cannot check a {type(target).__name__}", expected="an nn.Module, a factory or a name")

    def make(self, shape: tuple[int, ...], layout: str, channels: int, device: str = "cpu") -> nn.Module:
        if self.instance is not None:
            return self.instance
        with torch.device(device):
            return self.factory(shape, layout, channels)  # type: ignore[misc]


def _sizes_for(pattern: Pattern, layout: str) -> list[tuple[int, ...]]:
    if layout == "b n c":
        return [(n,) for n in TOKENS]
    return [(s, s) for s in SQUARE] + list(NON_SQUARE)


def _bind(pattern: Pattern, layout: str, size: tuple[int, ...], axes: dict[str, int], batch: int) -> dict[str, int]:
    sizes = {"b": batch, "c": axes.get("c", 64), **axes}
    if layout == "b n c":
        if "n" not in axes:
            sizes["n"] = size[0]
    else:
        if "h" not in axes:
            sizes["h"] = size[0]
        if "w" not in axes:
            sizes["w"] = size[1]
    missing = [a for a in pattern.axes if a not in sizes]
    if missing:
        raise SpecError(f"axis {', '.join(missing)} of '{pattern.text}' has no size", hint="bind it: --axis name=N")
    return sizes


def _meta_try(subject: _Subject, pattern: Pattern, layout: str, sizes: dict[str, int], seconds: float) -> Outcome:
    shape = pattern.shape(sizes)
    try:
        module = subject.make(shape, layout, sizes["c"], device="meta")
    except Exception as err:  # noqa: BLE001 — a constructor that fails at this size is a finding too
        from .runner import first_line

        return Outcome(error=f"construction failed: {first_line(err)}")
    return run_meta(module, shape, seconds=seconds)


def _sweep(subject: _Subject, pattern: Pattern, layout: str, out_pattern: Pattern | None, axes: dict[str, int],
           batch: int, seconds: float) -> tuple[list[dict[str, Any]], list[dict[str, int]]]:
    """Run every size of the sweep on meta tensors; (records, bound sizes that passed)."""
    sweep, passing = [], []
    if out_pattern is not None and any(a not in pattern.axes and a not in axes for a in out_pattern.axes):
        why = f"the output contract '{out_pattern.text}' uses axes '{pattern.text}' does not have"
        return [{"size": list(s), "input": None, "ok": False, "output": None, "error": why}
                for s in _sizes_for(pattern, layout)], []
    for size in _sizes_for(pattern, layout):
        sizes = _bind(pattern, layout, size, axes, batch)
        outcome = _meta_try(subject, pattern, layout, sizes, seconds)
        message = outcome.error
        if outcome.ok and out_pattern is not None and outcome.tensor is not None:
            want = out_pattern.shape(sizes)
            if tuple(outcome.tensor.shape) != want:
                message = f"output {fmt_shape(outcome.tensor.shape)}, contract says {fmt_shape(want)}"
        sweep.append({"size": list(size), "input": list(pattern.shape(sizes)), "ok": message is None,
                      "output": list(outcome.tensor.shape) if outcome.tensor is not None else None,
                      "error": message})
        if message is None:
            passing.append(sizes)
    return sweep, passing


def check_module(target: nn.Module | Factory | str, input: str | None = "b c h w", output: str | None = None,
                 axes: dict[str, int] | None = None, args: dict[str, Any] | None = None, batch: int = 2,
                 compile: bool = True, export: bool = True, compile_backend: str = "aot_eager",
                 seconds: float = 20.0, max_elements: int = 2**22, max_bytes: int = 2 * 2**30) -> CheckReport:
    """Check a module against a shape contract and report what holds, what does not, and the rule it obeys.

    ``target``: an ``nn.Module``, a factory ``(shape, layout, channels) -> nn.Module``, a registered block kind,
    or ``"path/file.py:Name"`` / ``"package.module:Name"`` (constructed with ``args``). ``input``/``output``
    are einops-style patterns (``None`` input tries b c h w, b n c and b h w c); ``axes`` binds sizes
    (default c=64). Everything runs on meta tensors first; real runs are capped at ``max_elements`` input
    values, at ``max_bytes`` of activations (predicted on meta tensors before running) and ``seconds`` each.
    """
    axes = dict(axes or {})
    subject = _Subject(target, args or {})
    checks: list[CheckResult] = []
    out_pattern = parse_pattern(output) if output is not None else None
    if input is not None and out_pattern is not None:
        undefined = [a for a in out_pattern.axes if a not in parse_pattern(input).axes and a not in axes]
        if undefined:
            raise SpecError(f"output pattern '{output}' uses axes the input '{input}' does not define: "
                            + ", ".join(undefined), hint="bind them with --axis, or fix the pattern")
    # 1. layouts: the meta sweep for each candidate; a layout works if any size does
    candidates = [input] if input is not None else list(LAYOUTS)
    layouts: dict[str, str] = {}
    sweeps: dict[str, tuple[list[dict[str, Any]], list[dict[str, int]]]] = {}
    for text in candidates:
        sweeps[text] = _sweep(subject, parse_pattern(text), text, out_pattern, axes, batch, seconds)
        first_error = next((s["error"] for s in sweeps[text][0] if not s["ok"]), "fails")
        layouts[text] = "works" if sweeps[text][1] else first_error
    working = [k for k, v in layouts.items() if v == "works"]
    layout = working[0] if working else candidates[0]
    if input is None:
        checks.append(CheckResult("layouts", "passed" if working else "failed",
                                  "works with " + ", ".join(working) if working else "no layout works: " +
                                  "; ".join(f"{k}: {v}" for k, v in layouts.items())))
    pattern = parse_pattern(layout)
    sweep, passing = sweeps[layout]
    constraints, rule_text = infer_constraints(layout, sweep)
    failed = [s for s in sweep if not s["ok"]]
    checks.append(CheckResult(
        "shapes (meta sweep)", "passed" if not failed else "failed",
        f"{len(sweep)} sizes, all work" if not failed else
        f"{rule_text}; e.g. at {'×'.join(map(str, failed[0]['size']))}: {failed[0]['error']}"))
    if not passing:
        return CheckReport(subject.label, layout, layouts, checks, constraints, 0, {}, sweep)
    # 3. real runs at a few passing sizes, never where meta tensors predict too much memory
    from ..profile import profile

    probe = subject.make(pattern.shape(passing[0]), layout, passing[0]["c"], device="meta")
    too_big: list[str] = []

    def affordable(sizes: dict[str, int]) -> bool:
        shape = pattern.shape(sizes)
        if math.prod(shape) > max_elements:
            return False
        try:
            need = profile(probe, shape[1:], batch=shape[0]).activation_bytes
        except Exception:  # noqa: BLE001 — cannot predict: the time limit still applies
            return True
        if need > max_bytes:
            too_big.append(f"{fmt_shape(shape)} would allocate {need / 2**30:,.1f} GiB")
        return need <= max_bytes

    real_sizes: list[dict[str, int]] = []
    for sizes in passing:  # each check costs a meta profile: stop at three
        if len(real_sizes) == 3:
            break
        if affordable(sizes):
            real_sizes.append(sizes)
    if not real_sizes:
        checks.append(CheckResult("real forward", "skipped", "not run for real: " + "; ".join(too_big or
                                  [f"inputs above {max_elements:,} values"])))
        return CheckReport(subject.label, layout, layouts, checks, constraints, 0, {}, sweep)
    base = real_sizes[min(1, len(real_sizes) - 1)]
    module = subject.make(pattern.shape(base), layout, base["c"])
    params = sum(p.numel() for p in module.parameters())
    checks += real_checks(module, pattern, real_sizes, base, batch, seconds)
    checks += extra_checks(module, pattern, layout, base, seconds, compile, export, compile_backend)
    if too_big:
        next(c for c in checks if c.name == "real forward").message += " (skipped, too much memory: " + \
            "; ".join(too_big) + ")"
    try:
        macs = profile(module, pattern.shape(base)[1:], batch=base["b"]).macs
    except Exception:  # noqa: BLE001 — an uncountable module still gets its other checks
        macs = -1
    macs_at = {"input": list(pattern.shape(base)), "macs": macs}
    return CheckReport(subject.label, layout, layouts, checks, constraints, params, macs_at, sweep)
