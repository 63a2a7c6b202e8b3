"""Unregistered parameters: layers or trainable tensors kept in plain Python lists, tuples or dicts (paper code's
``self.convs = [nn.Conv2d(…) for _ in range(3)]``) are invisible to ``parameters()``, ``state_dict()`` and
``.to(device)``: never trained, saved or moved to the GPU. The forward still uses them, so every other check
passes. Found by walking every submodule's plain attributes; whether the forward uses them is seen in the worker
(a forward hook on each such layer, and autograd reaching each such tensor).

>>> class Paper(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.convs = [nn.Conv2d(8, 8, 1) for _ in range(3)]
>>> [(u.path, u.params) for u in find_unregistered(Paper())]
[('self.convs[0]', 72), ('self.convs[1]', 72), ('self.convs[2]', 72)]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import At, Check, Evidence, module_at, sample_input, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["Unregistered", "UnregisteredRun", "Hidden", "find_unregistered", "describe"]

_MODULE_OWN = frozenset(vars(nn.Module()))
"""nn.Module's own bookkeeping attributes (``_parameters``, ``_modules``, hooks …): registered by definition."""
_MAX_ITEMS = 1000
"""Containers are looked into up to this many items each (a list of a million floats is not a parameter list)."""


@dataclass
class Hidden:
    """One unregistered layer or tensor: where (``self.convs[0]``), in what (``list``, ``tuple``, ``dict`` or
    ``attribute``), a layer or a tensor, its parameter values, and whether the forward used it."""

    path: str
    container: str
    layer: bool
    params: int
    used: bool | None = None


@dataclass
class UnregisteredRun:
    """Everything found in the module at one input, and how many registered layers were looked into."""

    found: list[Hidden]
    layers: int = 0


def _walk(value: Any, path: str, container: str, depth: int) -> Iterator[tuple[str, str, Any]]:
    """(path, container, object) for every layer and leaf tensor needing a gradient reachable from ``value``."""
    if isinstance(value, nn.Module):
        yield path, container, value
    elif isinstance(value, torch.Tensor):
        if value.requires_grad and value.is_leaf:
            yield path, container, value
    elif depth < 3 and isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        kind = type(value).__name__ if type(value) in (list, tuple) else "list"
        for i, item in enumerate(value[:_MAX_ITEMS]):
            yield from _walk(item, f"{path}[{i}]", kind, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for key, item in list(value.items())[:_MAX_ITEMS]:
            yield from _walk(item, f"{path}[{key!r}]", "dict", depth + 1)


def _unregistered_objects(module: nn.Module) -> list[tuple[str, str, nn.Module | torch.Tensor]]:
    """Every unregistered layer and trainable tensor, with its path and container."""
    known = {id(m) for m in module.modules()} | {id(p) for p in module.parameters()}
    found, seen = [], set()
    for prefix, sub in module.named_modules():
        for name, value in vars(sub).items():
            if name in _MODULE_OWN or isinstance(value, nn.Module):  # a plain nn.Module attribute is registered
                continue
            where = ".".join(["self", *([prefix] if prefix else []), name])
            for path, container, obj in _walk(value, where, "attribute", 0):
                if id(obj) not in known and id(obj) not in seen:
                    seen.add(id(obj))
                    found.append((path, container, obj))
    return found


def _values(obj: nn.Module | torch.Tensor, counted: set[int]) -> int:
    """Parameter values of a layer (or a tensor's own), each tensor counted once across the whole finding."""
    items = [obj] if isinstance(obj, torch.Tensor) else list(obj.parameters())
    total = 0
    for t in items:
        if id(t) not in counted:
            counted.add(id(t))
            total += t.numel()
    return total


def find_unregistered(module: nn.Module) -> list[Hidden]:
    """The unregistered layers and trainable tensors of ``module`` (``used`` unknown: no forward is run)."""
    counted: set[int] = set()
    return [Hidden(path, container, isinstance(obj, nn.Module), _values(obj, counted))
            for path, container, obj in _unregistered_objects(module)]


def _mark_used(module: nn.Module, shape: tuple[int, ...], objects: list[Any], found: list[Hidden]) -> None:
    """One forward (eval) with a hook on each unregistered layer; autograd says which tensors it reached."""
    called: set[int] = set()
    hooks = [obj.register_forward_hook(lambda m, i, o: called.add(id(m))) for obj in objects
             if isinstance(obj, nn.Module)]
    leaves = [t for obj in objects for t in ([obj] if isinstance(obj, torch.Tensor) else obj.parameters())
              if t.requires_grad]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = [t for t in tensors(module(sample_input(shape, 7))) if t.requires_grad]
            total = torch.stack([t.float().sum() for t in out]).sum() if out else None
            grads = torch.autograd.grad(total, leaves, allow_unused=True) if total is not None and leaves \
                else [None] * len(leaves)
    finally:
        for hook in hooks:
            hook.remove()
    reached = {id(t) for t, g in zip(leaves, grads) if g is not None}
    for record, obj in zip(found, objects):
        own = [obj] if isinstance(obj, torch.Tensor) else list(obj.parameters())
        record.used = id(obj) in called or any(id(t) in reached for t in own)


class Unregistered(Check[At, UnregisteredRun]):
    """No layer or trainable tensor the forward uses is hidden from ``parameters()`` (required)."""

    name = "parameters registered"
    order = 55
    backward = True

    def tasks(self, found: Evidence) -> list[At]:
        return [found.at]

    def run(self, held: UnderTest, task: At) -> UnregisteredRun:
        module = module_at(held, task)
        objects = [obj for _, _, obj in _unregistered_objects(module)]
        found = find_unregistered(module)
        if found:
            _mark_used(module, tuple(task.shape), objects, found)
        return UnregisteredRun(found, sum(1 for _ in module.modules()))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult:
        answer = found.one(Unregistered)
        at = fmt_shape(found.at.shape[1:])
        if answer is None or answer.value is None:
            return CheckResult(self.name, "skipped", f"could not look at {at}: {answer.error if answer else None}",
                               required=False)
        items = answer.value.found
        used = [u for u in items if u.used is not False]
        evidence = {"unregistered": [vars(u) for u in items]}
        if not items:
            return CheckResult(self.name, "passed", f"every layer and trainable tensor is registered (looked into "
                               f"{answer.value.layers} layers' attributes)", evidence=evidence)
        if not used:
            return CheckResult(self.name, "passed", "; ".join(describe(items)) + f" — but the forward does not use "
                               f"them ({at})", evidence=evidence)
        return CheckResult(self.name, "failed", "; ".join(describe(used)), evidence=evidence)


_FIX = {("list", True): "nn.ModuleList", ("tuple", True): "nn.ModuleList", ("dict", True): "nn.ModuleDict",
        ("list", False): "nn.ParameterList", ("tuple", False): "nn.ParameterList", ("dict", False): "nn.ParameterDict",
        ("attribute", False): "nn.Parameter"}
_IN = {"list": "a plain Python list", "tuple": "a plain Python tuple", "dict": "a plain Python dict",
       "attribute": "a plain attribute"}


def describe(items: list[Hidden]) -> list[str]:
    """One sentence per container: ``layers in a plain Python list at self.blocks[0..2] are not registered: their
    1,234 parameters are never trained, saved or moved to the GPU; use nn.ModuleList``."""
    groups: dict[tuple[str, str, bool], list[Hidden]] = {}
    for u in items:
        holder = u.path.rsplit("[", 1)[0] if u.path.endswith("]") else u.path
        groups.setdefault((holder, u.container, u.layer), []).append(u)
    said = []
    for (holder, container, layer), members in groups.items():
        what = ("layers" if layer else "tensors that require grad") if len(members) > 1 else \
            ("a layer" if layer else "a tensor that requires grad")
        values = sum(u.params for u in members)
        said.append(f"{what} in {_IN[container]} at {_where(holder, members)} "
                    f"{'are' if len(members) > 1 else 'is'} not registered: "
                    f"{'their' if len(members) > 1 else 'its'} {values:,} parameters are never trained, saved "
                    f"or moved to the GPU; use {_FIX[(container, layer)]}")
    return said


def _where(holder: str, members: list[Hidden]) -> str:
    """``self.blocks[0..2]`` for a run of indices, else the paths themselves."""
    keys = [u.path[len(holder):] for u in members]
    indices = [int(k[1:-1]) for k in keys if k[1:-1].isdigit()]
    if len(indices) == len(keys) > 1 and indices == list(range(indices[0], indices[0] + len(indices))):
        return f"{holder}[{indices[0]}..{indices[-1]}]"
    return ", ".join(u.path for u in members)
