"""Is this module really plug-and-play? Sizes, channels, layouts, modes, batches, gradients — in an isolated
worker process, so a module that hangs, eats memory or kills its process is a finding, not a crash.

>>> report = check_module("cbam", input="b c h w", axes={"c": 16})
>>> report.ok, report.size_rule.kind, report.constraints
(True, 'any', [])
"""

from __future__ import annotations

import io
import math
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from torch import nn

from ..errors import SpecError
from ..meta import torch_state_guard
from .constraints import Constraint, Rule
from .contract import parse_pattern
from .findings import MODES, batch_check, grad_check, info_checks, inplace_check, input_check, mode_checks, size_check
from .probes import grad_probe, numbers_probe
from .report import CheckReport, CheckResult
from .sweep import Plan, channel_sweep, layout_works, size_sweep
from .targets import Factory, class_factory, fixed_channels, parse_args, resolve_target
from .worker import Worker

__all__ = ["check_module", "CheckReport", "CheckResult", "Constraint", "Rule", "parse_args"]

LAYOUTS = ("b c h w", "b n c", "b h w c")
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


def _subject(target: nn.Module | type | Factory | str, args: dict[str, Any]) -> tuple[str, dict[str, Any], bool, int | None]:
    """(label, worker context, channels can vary, the channels the target fixes)."""
    if isinstance(target, nn.Module):
        return type(target).__name__, {"instance": target}, False, _instance_channels(target)
    if isinstance(target, str):
        label, factory, follows = resolve_target(target, args)
        return label, {"factory": factory}, follows, fixed_channels(target, args)
    if isinstance(target, type) and issubclass(target, nn.Module):
        factory, follows = class_factory(target, args)
        return target.__name__, {"factory": factory}, follows, fixed_channels(target, args)
    if callable(target):
        return getattr(target, "__name__", "factory"), {"factory": target}, True, None
    raise SpecError(f"cannot check a {type(target).__name__}", expected="an nn.Module, a factory or a name")


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


def _grad_items(records: list[dict[str, Any]], base: dict[str, Any], layout: str) -> list[dict[str, Any]]:
    """Up to four working real sizes for the backward pass: the base, the smallest, the largest up to four
    times the base's input, and a non-square one."""
    real = [r for r in records if r["ok"] and r["how"].startswith("real")
            and math.prod(r["input"]) <= 4 * math.prod(base["input"])]
    squares = [r for r in real if len(set(r["size"])) == 1]
    picks = [base] + squares[:1] + squares[-1:] + [r for r in real if len(set(r["size"])) > 1][:1]
    seen, items = set(), []
    for r in picks:
        if tuple(r["size"]) not in seen:
            seen.add(tuple(r["size"]))
            items.append({"shape": r["input"], "c": r["c"], "layout": layout, "base": r is base})
    return items


def check_module(target: nn.Module | type[nn.Module] | Factory | str, input: str | None = "b c h w", output: str | None = None,
                 axes: dict[str, int] | None = None, args: dict[str, Any] | None = None, batch: int = 2,
                 compile: bool = False, export: bool = False, compile_backend: str = "aot_eager",
                 seconds: float = 20.0, max_bytes: int = 2 * 2**30, real_elements: int = 2**18,
                 channels: bool = True, budget: float | None = None) -> CheckReport:
    """Check a module against a shape contract: what holds, what does not, the rules it obeys, with evidence.

    ``target``: an ``nn.Module`` (never changed: it runs only in a forked copy), an ``nn.Module`` class or a
    command-line ``file.py:Name`` / ``package.module:Name`` (built with ``args``; its channel parameters
    follow the input), a factory ``(shape, layout, channels) -> nn.Module``, or a registered block kind. ``input``/
    ``output``: einops-style patterns (``None`` input tries b c h w, b n c, b h w c). ``axes`` binds sizes
    (``c`` defaults to what the target fixes, else 64). Inputs up to ``real_elements`` values run for real,
    larger ones on meta tensors; each probe gets ``seconds`` and the worker ``max_bytes`` more memory.
    ``channels``: also sweep the channel count when the target can be built at other widths. ``budget``: the
    whole check's time limit (default 3 × ``seconds`` + 60 s); probes after it are reported as not run.

    >>> check_module(C2f, args={"c1": 64, "c2": 64}).ok   # from ultralytics.nn.modules.block
    True
    """
    axes, args = dict(axes or {}), dict(args or {})
    out_pattern = parse_pattern(output) if output is not None else None
    if input is not None and out_pattern is not None:
        undefined = [a for a in out_pattern.axes if a not in parse_pattern(input).axes and a not in axes]
        if undefined:
            raise SpecError(f"output pattern '{output}' uses axes the input '{input}' does not define: "
                            + ", ".join(undefined), hint="bind them with --axis, or fix the pattern")
    label, ctx, follows, fixed = _subject(target, args)
    width = axes.setdefault("c", fixed or 64)
    budget = 3 * seconds + 60 if budget is None else budget
    with torch_state_guard(), Worker(ctx, memory=max_bytes, budget=budget) as worker:
        _warm_up()
        def plan_for(text: str) -> Plan:
            return Plan(parse_pattern(text), out_pattern, axes, width, batch, real_elements, seconds)

        layouts: dict[str, str] = {}
        checks: list[CheckResult] = []
        if input is None:
            for text in LAYOUTS:
                layouts[text] = layout_works(plan_for(text), worker) or "works"
            working = [k for k, v in layouts.items() if v == "works"]
            checks.append(CheckResult("layouts", "passed" if working else "failed",
                                      "works with " + ", ".join(working) if working else "no layout works: " +
                                      "; ".join(f"{k}: {v}" for k, v in layouts.items())))
            layout = working[0] if working else LAYOUTS[0]
        else:
            layout = input
        plan = plan_for(layout)
        sweep, rule = size_sweep(plan, worker)
        report = CheckReport(label, layout, layouts, checks, rule, sweep=sweep)
        size_check(report)
        base = _base(sweep, plan.names)
        if base is not None:
            _numbers(report, plan, worker, base, follows and channels, compile, export, compile_backend)
        elif follows and channels:  # nothing works at this width: say at which widths it would
            _channels(report, plan, worker, (16,) if plan.names == ("n",) else (8, 8))
        report.isolation = {"forks": worker.forks}
    return report


def _half_on_cuda(report: CheckReport, worker: Worker, base: dict[str, Any], plan: Plan) -> CheckResult:
    """float16 on CUDA, reported only. A forked worker cannot use CUDA once the caller has, so this one runs
    here, on a copy, under the time limit (a crash in a CUDA kernel is the one failure not contained)."""
    import torch

    from ..meta import real_copy
    from .runner import time_limit

    name = "float16 (CUDA)"
    if not torch.cuda.is_available():
        return CheckResult(name, "skipped", "no CUDA device (0 found)", required=False)
    try:
        ctx = worker.context
        if ctx.get("instance") is not None:
            module = real_copy(ctx["instance"])
        else:
            module = ctx["factory"](tuple(base["input"]), plan.pattern.text, base["c"])
        quiet = io.StringIO()  # a module that prints must not write into the caller's output (JSON on stdout)
        with time_limit(plan.seconds), torch.no_grad(), redirect_stdout(quiet), redirect_stderr(quiet):
            out = module.cuda().half().eval()(torch.randn(base["input"], device="cuda", dtype=torch.half))
        del module, out
        return CheckResult(name, "passed", f"runs at {'×'.join(map(str, base['input']))}", required=False)
    except Exception as err:  # noqa: BLE001 — reported, not required
        return CheckResult(name, "failed", f"at {'×'.join(map(str, base['input']))}: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}", required=False)


def _channels(report: CheckReport, plan: Plan, worker: Worker, size: tuple[int, ...]) -> None:
    """The channel sweep at ``size`` and its rule, reported (not required: the width is the caller's choice)."""
    report.channel_sweep, report.channel_rule = channel_sweep(plan, worker, size)
    bad = [r for r in report.channel_sweep if not r["ok"]]
    report.checks.append(CheckResult(
        "channels", "failed" if bad else "passed",
        f"{len(report.channel_sweep)} widths at {'×'.join(map(str, size))}: {report.channel_rule.text}"
        + (f"; e.g. c={bad[0]['size'][0]}: {bad[0]['error']}" if bad else ""), required=False,
        evidence={"rule": report.channel_rule.to_dict(), "failing": [r["size"][0] for r in bad]}))


def _numbers(report: CheckReport, plan: Plan, worker: Worker, base: dict[str, Any], vary: bool, compile: bool,
             export: bool, backend: str) -> None:
    """Everything that needs real numbers, at the base size (and the channel sweep around it)."""
    common = {"shape": base["input"], "c": base["c"], "layout": plan.pattern.text}
    report.base = list(base["input"])
    if vary:
        _channels(report, plan, worker, tuple(base["size"]))
    tasks = [dict(common, task="mode", train=m == "train", batch=b) for m, b in MODES]
    tasks += [dict(common, task=t) for t in ("batch", "ignore", "bf16", "count")]
    if plan.pattern.text == "b c h w":
        tasks.append(dict(common, task="channels_last"))
    tasks += [dict(common, task=t, backend=backend) for t, on in (("compile", compile), ("export", export)) if on]
    slow = {"compile": 120.0, "export": 120.0}
    replies: dict[str, Any] = {}
    modes: dict[tuple[str, int], Any] = {}
    for task in tasks:  # one stream, except the slow ones, which get their own time limit
        if task["task"] in slow:
            replies[task["task"]] = worker.call(numbers_probe, task, max(plan.seconds, slow[task["task"]]))
    fast = [t for t in tasks if t["task"] not in slow]
    for task, reply in worker.stream(numbers_probe, fast, plan.seconds):
        if task["task"] == "mode":
            modes[("train" if task["train"] else "eval", task["batch"])] = reply
        else:
            replies[task["task"]] = reply
    nonfinite = [f"eval, batch {r['input'][0]}, {'×'.join(map(str, r['size']))}" for r in report.sweep
                 if r["ok"] and r["finite"] is False]
    mode_checks(report, base, modes, nonfinite)
    batch_check(report, base, replies["batch"])
    inplace_check(report, report.sweep, modes)
    grads = _grad_items(report.sweep, base, plan.pattern.text)
    backward = [r for _, r in worker.stream(grad_probe, grads, plan.seconds)]
    if any("autograd's threading" in str(r.value.get("error") if r.ok else r.error) for r in backward):
        # once the caller has run a backward pass, a forked child cannot: gradients run here, on a copy
        with Worker(worker.context, fork=False) as local:
            backward = [r for _, r in local.stream(grad_probe, grads, plan.seconds)]
    input_grad = grad_check(report, list(zip(grads, backward)))
    input_check(report, base, replies["ignore"], input_grad)
    warned = list(dict.fromkeys(w for r in report.sweep for w in r.get("warnings") or []))
    warned += [w for r in modes.values() if r.ok for w in r.value.get("warnings", []) if w not in warned]
    runs = sum(1 for r in report.sweep if r.get("finite") is not None) + len(modes)
    info_checks(report, plan.pattern.text, replies, warned, backend, runs)
    report.checks.append(_half_on_cuda(report, worker, base, plan))
    count = replies["count"].value if replies["count"].ok else {"error": replies["count"].error}
    if not count.get("error"):
        report.params, report.macs_at = count["params"], {"input": list(base["input"]), "macs": count["macs"]}
