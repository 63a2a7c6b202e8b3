"""The checks that run the module for real: modes, batch sizes, finiteness, batch independence, gradients,
warnings (required), then dtypes, channels_last, torch.compile and torch.export (reported only)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import fmt_shape
from .contract import Pattern
from .runner import run_real

__all__ = ["CheckResult", "real_checks", "extra_checks"]


@dataclass
class CheckResult:
    """One check: passed, failed or skipped, and why."""

    name: str
    status: str
    message: str
    required: bool = True


def real_checks(module: nn.Module, pattern: Pattern, sizes: list[dict[str, int]], base: dict[str, int],
                batch: int, seconds: float) -> list[CheckResult]:
    """The required checks, on real tensors at the given (affordable) sizes."""
    results = []
    shape = pattern.shape(base)
    torch.manual_seed(0)
    warned: list[str] = []
    # real runs agree with meta, in eval, at each size
    bad = []
    for sizes_ in sizes:
        x = torch.randn(pattern.shape(sizes_))
        outcome = run_real(lambda: module.eval()(x), seconds)
        if not outcome.ok:
            bad.append(f"{fmt_shape(x.shape)}: {outcome.error}")
    results.append(CheckResult("real forward", "failed" if bad else "passed",
                               "; ".join(bad) or f"ran at {', '.join(fmt_shape(pattern.shape(s)) for s in sizes)}"))
    # modes, batch 1, finiteness
    one = dict(base, b=1)
    findings, nonfinite = [], []
    for mode in ("train", "eval"):
        for sizes_ in (base, one):
            x = torch.randn(pattern.shape(sizes_))
            outcome = run_real(lambda: module.train(mode == "train")(x), seconds)
            warned += [w for w in outcome.warned if w not in warned]
            label = f"{mode}, batch {sizes_['b']}"
            if not outcome.ok:
                findings.append(f"{label}: {outcome.error}")
            elif outcome.tensor is not None and not torch.isfinite(outcome.tensor).all():
                nonfinite.append(label)
    module.eval()
    results.append(CheckResult("train and eval mode, batch 1 and >1", "failed" if findings else "passed",
                               "; ".join(findings) or "runs in both modes at both batch sizes"))
    results.append(CheckResult("finite outputs", "failed" if nonfinite else "passed",
                               f"NaN/Inf in {', '.join(nonfinite)}" if nonfinite else "no NaN or Inf"))
    results.append(CheckResult("warnings", "failed" if warned else "passed",
                               "; ".join(warned[:3]) if warned else "the module warns about nothing", required=False))
    # batch independence in eval
    n = max(batch, 3)
    x = torch.randn(pattern.shape(dict(base, b=n)))
    with torch.no_grad():
        together = run_real(lambda: module(x), seconds)
        alone = [run_real(lambda i=i: module(x[i:i + 1]), seconds) for i in range(n)]
    if together.tensor is None or any(a.tensor is None for a in alone):
        results.append(CheckResult("batch independence (eval)", "skipped", "the module did not run at every batch"))
    else:
        joined = torch.cat([a.tensor for a in alone])  # type: ignore[misc]
        err = (joined - together.tensor).abs().max().item() / (together.tensor.abs().max().item() + 1e-12)
        ok = math.isfinite(err) and err <= 1e-4
        results.append(CheckResult("batch independence (eval)", "passed" if ok else "failed",
                                   f"sample outputs do not depend on the other samples (rel. diff {err:.1e})" if ok
                                   else f"sample i's output changes with the other samples (rel. diff {err:.2e}):"
                                        " statistics are taken across the batch"))
    # gradients reach every parameter
    module.train()
    module.zero_grad(set_to_none=True)
    x = torch.randn(shape, requires_grad=True)
    outcome = run_real(lambda: module(x), seconds)
    if outcome.tensor is None:
        results.append(CheckResult("gradients", "skipped", f"no output to differentiate: {outcome.error}"))
    else:
        back = run_real(lambda: outcome.tensor.float().square().mean().backward(), seconds)  # type: ignore[union-attr]
        dead = [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]
        if not back.ok:
            results.append(CheckResult("gradients", "failed", f"backward failed: {back.error}"))
        else:
            results.append(CheckResult("gradients", "failed" if dead else "passed",
                                       f"no gradient reaches: {', '.join(dead)}" if dead else
                                       "every parameter gets a gradient"))
    module.zero_grad(set_to_none=True)
    module.eval()
    return results


def extra_checks(module: nn.Module, pattern: Pattern, layout: str, base: dict[str, int], seconds: float,
                  compile: bool, export: bool, backend: str) -> list[CheckResult]:
    """Reported, not required: dtypes, channels_last, torch.compile, torch.export."""
    results = []
    x = torch.randn(pattern.shape(base))
    with torch.no_grad():
        reference = run_real(lambda: module(x), seconds).tensor
    bf16 = copy.deepcopy(module).to(torch.bfloat16)
    with torch.no_grad():
        outcome = run_real(lambda: bf16(x.to(torch.bfloat16)), seconds)
    msg = outcome.error or ("runs" + ("" if outcome.tensor is None or torch.isfinite(outcome.tensor).all()
                                      else ", but gives NaN/Inf"))
    results.append(CheckResult("bfloat16 (CPU)", "passed" if msg == "runs" else "failed", msg, required=False))
    if torch.cuda.is_available():
        half = copy.deepcopy(module).cuda().half()
        with torch.no_grad():
            outcome = run_real(lambda: half(x.cuda().half()), seconds)
        results.append(CheckResult("float16 (CUDA)", "passed" if outcome.ok else "failed", outcome.error or "runs",
                                   required=False))
    else:
        results.append(CheckResult("float16 (CUDA)", "skipped", "no CUDA device", required=False))
    if layout == "b c h w":
        cl = copy.deepcopy(module).to(memory_format=torch.channels_last)
        with torch.no_grad():
            outcome = run_real(lambda: cl(x.contiguous(memory_format=torch.channels_last)), seconds)
        same = outcome.tensor is not None and reference is not None and torch.allclose(
            outcome.tensor.float(), reference.float(), rtol=1e-3, atol=1e-4)
        results.append(CheckResult("channels_last", "passed" if same else "failed",
                                   outcome.error or ("same result" if same else "result differs from contiguous"),
                                   required=False))
    else:
        results.append(CheckResult("channels_last", "skipped", f"not a 4-d b c h w input ({layout})", required=False))
    if compile:
        torch._dynamo.reset()
        compiled = torch.compile(copy.deepcopy(module), fullgraph=True, backend=backend)
        outcome = run_real(lambda: compiled(x), max(seconds, 120))
        results.append(CheckResult(f"torch.compile(fullgraph=True, backend={backend})",
                                   "passed" if outcome.ok else "failed", outcome.error or "compiles as one graph",
                                   required=False))
    if export:
        outcome = run_real(lambda: torch.export.export(copy.deepcopy(module), (x,)), max(seconds, 120))
        results.append(CheckResult("torch.export", "passed" if outcome.ok else "failed",
                                   outcome.error or "exports", required=False))
    return results


