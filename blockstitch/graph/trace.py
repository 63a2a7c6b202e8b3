"""From a module to a :class:`GraphRecord`: one meta forward of a shadow copy, following every tensor.

Each module that is drawn as a box (a leaf, or a block an edit made) is hooked; a ``TorchFunctionMode`` tags
every tensor with the box that made it — or, for code between boxes (a residual ``x += shortcut``), with the
boxes its inputs came from — so an edge is drawn wherever a box reads a tensor another box made. The module
itself is never called: the forward runs on :func:`blockstitch.meta.guest`'s meta shadow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import count
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..errors import ShapeError, fmt_shape
from ..meta import guest, probe_dtype
from .records import GraphNode, GraphRecord

__all__ = ["trace_graph"]


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


class _Tagger(TorchFunctionMode):
    """Tags each tensor a torch function returns: with the innermost box running, else with its inputs' tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[int, frozenset[str]] = {}
        self.born: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # alive until the trace ends, so no id() is reused
        self.stack: list[str] = []
        self.started: dict[str, int] = {}
        self.clock = count()

    def tag(self, t: torch.Tensor, tags: frozenset[str]) -> None:
        self.tags[id(t)], self.born[id(t)] = tags, next(self.clock)
        self.keep.append(t)

    def sources(self, value: Any) -> frozenset[str]:
        found: set[str] = set()
        for t in _tensors(value):
            found |= self.tags.get(id(t), frozenset())
        return frozenset(found)

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        outs = _tensors(result)
        if outs:
            tags = frozenset({self.stack[-1]}) if self.stack else self.sources((args, kwargs))
            for t in outs:
                self.tag(t, tags)
        return result


def _boxes(model: nn.Module, atomic: set[str]) -> set[str]:
    """Module paths drawn as boxes: leaves, and atomic modules (their insides are not drawn)."""
    boxes = set()
    for name, module in model.named_modules(remove_duplicate=False):
        if not name or any(name.startswith(a + ".") for a in atomic):
            continue
        if name in atomic or not any(True for _ in module.children()):
            boxes.add(name)
    return boxes


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        n += 1
    return n


class _Calls:
    """Which path each module call has: a module held in several places (Ultralytics shares one activation
    across every ``Conv``) takes the path under the module that called it."""

    def __init__(self, model: nn.Module, boxes: set[str], tagger: _Tagger, kinds: Mapping[str, str],
                 edits: Mapping[str, tuple[str, str]]) -> None:
        self.paths: dict[int, list[str]] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(module), []).append(name)
        self.boxes, self.tagger, self.kinds, self.edits = boxes, tagger, kinds, edits
        self.running: list[tuple[str, str | None]] = []  # (path, box or None) of every module running
        self.nodes: dict[str, GraphNode] = {}
        self.edges: dict[tuple[str, str], None] = {}
        self.count: dict[str, int] = {}

    def path(self, module: nn.Module) -> str:
        options = self.paths.get(id(module), [""])
        parent = self.running[-1][0] if self.running else ""
        return max(options, key=lambda p: (_common(p, parent) if parent else 0, -len(p)))

    def pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        path = self.path(module)
        inside = next((b for _, b in reversed(self.running) if b is not None), None)
        if path not in self.boxes or (inside is not None and path.startswith(inside.split("#")[0] + ".")):
            self.running.append((path, None))
            return
        self.count[path] = self.count.get(path, 0) + 1
        box = path if self.count[path] == 1 else f"{path}#{self.count[path]}"  # called again: another box
        op, kind = self.edits.get(path, (None, self.kinds.get(path, type(module).__name__)))
        self.nodes[box] = GraphNode(box, kind, None, edit=op)
        for src in sorted(self.tagger.sources((args, kwargs))):
            self.edges[(src, box)] = None
        self.running.append((path, box))
        self.tagger.stack.append(box)
        self.tagger.started[box] = next(self.tagger.clock)

    def post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        _, box = self.running.pop()
        if box is None:
            return
        self.tagger.stack.pop()
        outs = _tensors(out)
        if outs:
            self.nodes[box].shape = tuple(outs[0].shape)
        start = self.tagger.started.pop(box)
        for t in outs:  # a tensor passed through untouched (nn.Identity) now comes from this box
            if self.tagger.born.get(id(t), -1) < start:
                self.tagger.tag(t, frozenset({box}))


def trace_graph(model: nn.Module, input_shape: Sequence[int], name: str, kinds: Mapping[str, str],
                edits: Mapping[str, tuple[str, str]]) -> GraphRecord:
    """Every box's output shape and inputs, from one meta forward of ``model``'s shadow at ``input_shape``
    (batch included). ``kinds`` names modules (a plan's block kinds); ``edits`` maps a module path to the
    (op, kind) of the edit that made it; such a module is one box.

    >>> trace_graph(timm.create_model("resnet18"), (1, 3, 224, 224), "resnet18", {}, {}).node("layer1.0.conv1").shape
    (1, 64, 56, 56)
    """
    tagger = _Tagger()
    with guest(model) as shadow:
        calls = _Calls(shadow, _boxes(shadow, set(edits)), tagger, kinds, edits)
        handles = []
        for module in {id(m): m for _, m in shadow.named_modules(remove_duplicate=False) if m is not shadow}.values():
            handles.append(module.register_forward_pre_hook(calls.pre, with_kwargs=True))
            handles.append(module.register_forward_hook(calls.post, with_kwargs=True))
        x = torch.empty(tuple(input_shape), device="meta", dtype=probe_dtype(model))  # the model's own dtype
        nodes = {"input": GraphNode("input", "input", tuple(x.shape), io=True)}
        try:
            with tagger:
                tagger.tag(x, frozenset({"input"}))
                out = shadow.eval()(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            raise ShapeError(f"'{name}' does not run at input {fmt_shape(input_shape)}: "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}",
                             hint="give the input it expects (--input C,H,W)") from None
        finally:
            for h in handles:
                h.remove()
        nodes.update(calls.nodes)
        edges = dict(calls.edges)
        results = _tensors(out)
        for i, t in enumerate(results):
            oname = "output" if len(results) == 1 else f"output{i}"
            nodes[oname] = GraphNode(oname, "output", tuple(t.shape), io=True)
            for src in sorted(tagger.tags.get(id(t), frozenset())):
                edges[(src, oname)] = None
    return GraphRecord(name, tuple(input_shape), list(nodes.values()), list(edges))
