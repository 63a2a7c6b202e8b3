"""Is this module really plug-and-play? Sizes, channels, layouts, modes, batches, gradients — in an isolated
worker process, so a module that hangs, eats memory or kills its process is a finding, not a crash.

>>> report = check_module("cbam", input="b c h w", axes={"c": 16})
>>> report.ok, report.size_rule.kind, report.constraints
(True, 'any', [])
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import SpecError
from ..meta import torch_state_guard
from ..progress import ProgressLike, as_progress
from ..subject import Subject, subject
from ..rules import Constraint, Rule
from .contract import parse_pattern
from .probes import all_checks, take_numbers
from .probes.sizes import channels_verdict, layouts_verdict, sizes_verdict
from .report import CheckReport, CheckResult
from .sweep import ProbeSettings, channel_sweep, layout_works, size_sweep
from .targets import TARGET_KINDS, Factory, fixed_channels, parse_args
from .time_budget import TimeBudget, TooSlow, time_verdict
from .under_test import UnderTest
from .worker import Worker

__all__ = ["check_module", "CheckReport", "CheckResult", "Constraint", "Rule", "parse_args"]

LAYOUTS = ("b c h w", "b n c", "b h w c")
BUDGET_S = 60.0
"""The whole check's default time budget (plus ``SLOW_CHECK_S`` for each of compile and export, when asked)."""
SLOW_CHECK_S = 120.0
_BASE = [(8, 8), (12, 12), (16, 16), (7, 7), (14, 14), (10, 10), (6, 6), (24, 24), (4, 4)]


def _instance_channels(module: nn.Module) -> int | None:
    """The input width an instance was built for: its first conv, linear or norm layer says."""
    for sub in module.modules():
        for attr in ("in_channels", "in_features", "num_features", "num_channels"):
            value = getattr(sub, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        shape = getattr(sub, "normalized_shape", None)
        if isinstance(shape, tuple) and shape:
            return int(shape[-1])
    return None


def _target(target: Subject, args: dict[str, Any]) -> tuple[str, dict[str, Any], bool, int | None]:
    """(label, what the worker holds, channels can vary, the channels the target fixes)."""
    if target.is_given_module:  # never built again: the worker runs a forked copy of it
        module = target.module()
        return target.label, {"instance": module}, False, _instance_channels(module)
    factory, follows = target.factory(args)
    return target.label, {"factory": factory}, follows, fixed_channels(target, args)


_warm: list[bool] = []


def _warm_up() -> None:
    """First-use costs (the profiler's import, the FLOP counter) paid once here, not in every forked worker."""
    if not _warm:
        from ..profile import profile

        try:
            profile(nn.Linear(2, 2), (2,), batch=1)
        except Exception:  # noqa: BLE001 — only a warm-up
            pass
        _warm.append(True)


def _base(records: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, Any] | None:
    """The working size the numbers are taken at: an ordinary one that ran for real, else any that ran."""
    ok = {tuple(r["size"]): r for r in records if r["ok"]}
    prefer = [(16,), (24,), (12,), (49,), (8,)] if names == ("n",) else _BASE
    real = [s for s in prefer if s in ok and ok[s]["how"].startswith("real")]
    if real:
        return ok[real[0]]
    rest = sorted((r for r in ok.values() if r["how"].startswith("real")), key=lambda r: r["input"])
    return rest[len(rest) // 2] if rest else None


def check_module(target: Subject | nn.Module | type[nn.Module] | Factory | str, input: str | None = "b c h w",
                 output: str | None = None, axes: dict[str, int] | None = None, args: dict[str, Any] | None = None,
                 batch: int = 2,
                 compile: bool = False, export: bool = False, compile_backend: str = "aot_eager",
                 seconds: float = 20.0, max_bytes: int = 2 * 2**30, real_elements: int = 2**18,
                 channels: bool = True, budget: float | None = None, progress: ProgressLike = None) -> CheckReport:
    """Check a module against a shape contract: what holds, what does not, the rules it obeys, with evidence.

    ``target``: an ``nn.Module`` (never changed: it runs only in a forked copy), an ``nn.Module`` class or a
    command-line ``file.py:Name`` / ``package.module:Name`` (built with ``args``; its channel parameters
    follow the input), a factory ``(shape, layout, channels) -> nn.Module``, or a registered block kind. ``input``/
    ``output``: einops-style patterns (``None`` input tries b c h w, b n c, b h w c). ``axes`` binds sizes
    (``c`` defaults to what the target fixes, else 64). Inputs up to ``real_elements`` values run for real,
    larger ones on meta tensors; each probe gets ``seconds`` and the worker ``max_bytes`` more memory.
    ``channels``: also sweep the channel count when the target can be built at other widths. ``budget``: the
    whole check's time limit (default ``BUDGET_S``, at least 3 × ``seconds``, + ``SLOW_CHECK_S`` for each of
    compile and export); a forward too slow for it stops the check there ("too slow: 0.50 s per forward at
    2×2"), and the probes after it are reported as not run, with that reason. ``progress``: one step per layout
    tried, per size (and channel count) swept and per check that ran in the worker, reported here as each
    answer arrives (see :mod:`blockstitch.progress`; silent by default).

    >>> check_module(C2f, args={"c1": 64, "c2": 64}).ok   # from ultralytics.nn.modules.block
    True
    """
    found = subject(target, accept=TARGET_KINDS)
    axes, args = dict(axes or {}), dict(args or {})
    out_pattern = parse_pattern(output) if output is not None else None
    if input is not None and out_pattern is not None:
        undefined = [a for a in out_pattern.axes if a not in parse_pattern(input).axes and a not in axes]
        if undefined:
            raise SpecError(f"output pattern '{output}' uses axes the input '{input}' does not define: "
                            + ", ".join(undefined), hint="bind them with --axis, or fix the pattern")
    label, ctx, follows, fixed = _target(found, args)
    width = axes.setdefault("c", fixed or 64)
    if budget is None:
        budget = max(BUDGET_S, 3 * seconds) + SLOW_CHECK_S * (int(compile) + int(export))
    shown = as_progress(progress)
    with torch_state_guard(), Worker(UnderTest(**ctx), memory=max_bytes, budget=budget) as worker:
        _warm_up()
        clock = TimeBudget(budget)  # from here: the tool's own first-use cost above is not the module's time
        worker.deadline = clock.deadline
        def settings_for(text: str) -> ProbeSettings:
            return ProbeSettings(parse_pattern(text), out_pattern, axes, width, batch, real_elements, seconds,
                                 clock)

        layouts: dict[str, str] = {}
        checks: list[CheckResult] = []
        if input is None:
            shown.start(len(LAYOUTS), f"layouts 1/{len(LAYOUTS)}: {LAYOUTS[0]}")
            for i, text in enumerate(LAYOUTS, 2):
                layouts[text] = layout_works(settings_for(text), worker) or "works"
                shown.advance(f"layouts {i}/{len(LAYOUTS)}: {LAYOUTS[i - 1]}" if i <= len(LAYOUTS) else None)
            checks.append(layouts_verdict(layouts))
            working = [k for k, v in layouts.items() if v == "works"]
            layout = working[0] if working else LAYOUTS[0]
        else:
            layout = input
        settings = settings_for(layout)
        settings.progress = shown
        sweep, rule = size_sweep(settings, worker)
        report = CheckReport(label, layout, layouts, checks, rule, sweep=sweep)
        report.checks.append(sizes_verdict(report))
        base = _base(sweep, settings.names)
        if clock.stopped() is None:
            if base is not None:
                _numbers(report, settings, worker, base, follows and channels, compile, export, compile_backend)
            elif follows and channels:  # nothing works at this width: say at which widths it would
                _channels(report, settings, worker, (16,) if settings.names == ("n",) else (8, 8))
        slow = clock.stopped()
        if slow is not None:
            _stopped(report, slow, compile, export)
        report.isolation = {"forks": worker.forks}
    shown.done()
    return report


def _stopped(report: CheckReport, slow: TooSlow, compile: bool, export: bool) -> None:
    """The check stopped for lack of time: say why (required), and list every check that did not run."""
    asked = {"torch.compile": compile, "torch.export": export}
    done = {c.name.split("(")[0].strip() for c in report.checks}
    skipped = [c.name for c in all_checks() if c.name != "count" and asked.get(c.name, True)
               and c.name.split("(")[0].strip() not in done]
    report.too_slow = slow.to_dict()
    report.checks += time_verdict(slow, skipped)


def _channels(report: CheckReport, settings: ProbeSettings, worker: Worker, size: tuple[int, ...]) -> None:
    """The channel sweep at ``size`` and its rule, reported (not required: the width is the caller's choice)."""
    report.channel_sweep, report.channel_rule = channel_sweep(settings, worker, size)
    report.checks.append(channels_verdict(report.channel_sweep, report.channel_rule, size))


def _numbers(report: CheckReport, settings: ProbeSettings, worker: Worker, base: dict[str, Any], vary: bool,
             compile: bool, export: bool, backend: str) -> None:
    """Everything that needs real numbers, at the base size (and the channel sweep around it)."""
    report.base = list(base["input"])
    if vary:
        _channels(report, settings, worker, tuple(base["size"]))
    take_numbers(report, settings, worker, base, compile, export, backend)
