"""The probes: generator functions that run inside the worker (see ``worker.py``) on the module under test.

Each yields one plain, picklable dict per item. Shape probes run for real where the input is cheap (one run
gives the shape, finiteness and whether the input was written to) and on meta tensors elsewhere; numbers come
only from real runs. The worker's context holds the subject (an instance or a factory) and caches one built
module per channel count, so probes share construction.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..meta import meta_call, real_copy

__all__ = ["sweep_probe", "numbers_probe", "grad_probe", "tensors", "first_line"]


def first_line(err: BaseException) -> str:
    """``TypeName: first line of the message`` — the module's own words."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def tensors(out: Any, depth: int = 0) -> list[torch.Tensor]:
    """Every tensor in an output (tuples, lists and dicts included), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if depth > 3:
        return []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in tensors(o, depth + 1)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in tensors(o, depth + 1)]
    return []


def _module(ctx: dict[str, Any], item: dict[str, Any]) -> nn.Module:
    """The module for this layout and channel count (built once each; an instance is used as it is)."""
    if ctx.get("instance") is not None:
        return ctx["instance"]
    cache = ctx.setdefault("modules", {})
    key = (item["layout"], item["c"])
    if key not in cache:
        torch.manual_seed(0)
        try:
            cache[key] = ctx["factory"](tuple(item["shape"]), item["layout"], item["c"])
        except Exception as err:  # noqa: BLE001 — a constructor that fails at this width is a finding
            cache[key] = RuntimeError(f"construction failed: {first_line(err)}")
    made = cache[key]
    if isinstance(made, Exception):
        raise made
    return made


def _copy(ctx: dict[str, Any], purpose: str, channels: int, module: nn.Module) -> nn.Module:
    """A copy made once per purpose (training changes running statistics; gradients fill ``.grad``)."""
    key = (purpose, channels)
    if key not in ctx:
        ctx[key] = real_copy(module)
    return ctx[key]


def _input(shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + sum(i * s for i, s in enumerate(shape, 1)))
    return torch.randn(tuple(shape), generator=gen)


def _finite(out: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors(out) if t.is_floating_point() or t.is_complex())


SLOW_S = 0.1
"""A real sweep run slower than this sends larger sizes to meta tensors (numbers are taken at small sizes)."""
_META_LIMITS = ("meta", "data-dependent", "item()", "Cannot copy out", "nonzero", "tolist", "not implemented")


def _real(module: nn.Module, x: torch.Tensor, train: bool = False) -> dict[str, Any]:
    """One real forward of a copy of ``x``: output shape, finiteness, whether it wrote into its input."""
    given = x.clone()
    module.train(train)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        out = module(given)
    first = tensors(out)
    if not first:
        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
    return {"output": list(first[0].shape), "finite": _finite(out),
            "wrote_input": not torch.equal(given, x), "warnings": [str(w.message).splitlines()[0] for w in caught],
            "kind": type(out).__name__}


def sweep_probe(ctx: dict[str, Any], items: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Items ``{"shape", "c", "real"}``: does the module run there, with which output (and, real, numbers)?"""
    for item in items:
        shape = tuple(item["shape"])
        rec: dict[str, Any] = {"how": "real" if item["real"] else "meta", "finite": None, "wrote_input": None,
                               "warnings": []}
        try:
            module = _module(ctx, item)
            slow_at = ctx.get("slow_at", math.inf)
            if item["real"] and math.prod(shape) <= slow_at:
                started = time.perf_counter()
                rec.update(_real(module.eval(), _input(shape)))
                ctx["real_runs"] = ctx.get("real_runs", 0) + 1
                if time.perf_counter() - started > SLOW_S and ctx["real_runs"] > 3:  # (the first runs warm up)
                    ctx["slow_at"] = min(slow_at, math.prod(shape))  # larger inputs go to meta tensors
            else:
                rec["how"] = "meta"
                try:
                    out = meta_call(module, [torch.empty(shape, device="meta")])
                    first = tensors(out)
                    if not first:
                        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
                    rec.update(output=list(first[0].shape), kind=type(out).__name__)
                except Exception as err:  # noqa: BLE001
                    if not (item.get("fallback") and any(s in str(err) for s in _META_LIMITS)):
                        raise
                    rec.update(_real(module.eval(), _input(shape)), how="real (meta could not tell)")
            rec["error"] = None
        except Exception as err:  # noqa: BLE001 — the module's own failure at this size is the finding
            rec.update(output=None, error=first_line(err))
        yield rec


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / (b.float().abs().max() + 1e-12))


def _task(ctx: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    base = tuple(task["shape"])
    pristine = _module(ctx, task)
    name = task["task"]
    if name == "mode":
        if task["train"]:  # training runs change running statistics: on a copy made once
            pristine = _copy(ctx, "train", task["c"], pristine)
        return _real(pristine, _input((task["batch"], *base[1:]), 1), train=task["train"])
    pristine.eval()
    if name == "batch":
        x = _input((3, *base[1:]), 2)
        with torch.no_grad():
            together = tensors(pristine(x.clone()))[0]
            alone = torch.cat([tensors(pristine(x[i:i + 1].clone()))[0] for i in range(3)])
        return {"rel_diff": _rel(alone, together), "batch": 3}
    if name == "ignore":
        x1, x2 = _input(base, 3), _input(base, 4) * 2 + 1
        with torch.no_grad():
            o1, o2 = tensors(pristine(x1.clone())), tensors(pristine(x2.clone()))
        return {"same": all(torch.equal(a, b) for a, b in zip(o1, o2)), "rel_diff": _rel(o1[0], o2[0])}
    x = _input(base, 5)
    with torch.no_grad():
        reference = tensors(pristine(x.clone()))[0]
        if name == "bf16":
            out = tensors(real_copy(pristine).to(torch.bfloat16)(x.to(torch.bfloat16)))[0]
            return {"finite": bool(torch.isfinite(out).all()), "rel_diff": _rel(out, reference)}
        if name == "channels_last":
            cl = real_copy(pristine).to(memory_format=torch.channels_last)
            out = tensors(cl(x.contiguous(memory_format=torch.channels_last)))[0]
            return {"same": bool(torch.allclose(out.float(), reference.float(), rtol=1e-3, atol=1e-4)),
                    "rel_diff": _rel(out, reference)}
    if name == "compile":
        torch._dynamo.reset()
        compiled = torch.compile(real_copy(pristine), fullgraph=True, backend=task["backend"])
        with torch.no_grad():
            compiled(x)
        return {}
    if name == "export":
        torch.export.export(real_copy(pristine), (x,))
        return {}
    if name == "count":
        from ..profile import profile

        params = sum(p.numel() for p in pristine.parameters())
        try:
            macs = profile(pristine, base[1:], batch=base[0]).macs
        except Exception:  # noqa: BLE001 — an uncountable module still gets its other checks
            macs = -1
        return {"params": params, "macs": macs}
    raise ValueError(f"unknown task {name}")


def numbers_probe(ctx: dict[str, Any], items: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Items ``{"task": mode|batch|ignore|bf16|channels_last|compile|export|count, "shape", "c", ...}``."""
    for task in items:
        try:
            yield {"error": None, **_task(ctx, task)}
        except Exception as err:  # noqa: BLE001
            yield {"error": first_line(err)}


def grad_probe(ctx: dict[str, Any], items: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Items ``{"shape", "c"}``: in train mode, which parameters and does the input get a gradient?"""
    for item in items:
        shape = tuple(item["shape"])
        try:
            module = _copy(ctx, "grad", item["c"], _module(ctx, item)).train()
            module.zero_grad(set_to_none=True)
            with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller left on
                leaf = _input(shape, 6).requires_grad_(True)
                out = [t for t in tensors(module(leaf * 1)) if t.is_floating_point() and t.requires_grad]
                if out:
                    sum(t.float().square().mean() for t in out).backward()
            alive = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is not None]
            trainable = [n for n, p in module.named_parameters() if p.requires_grad]
            yield {"error": None, "alive": alive, "trainable": trainable, "input_grad": leaf.grad is not None}
        except Exception as err:  # noqa: BLE001
            yield {"error": first_line(err)}
