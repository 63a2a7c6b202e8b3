"""Insertion points of any ``nn.Module``: which modules run and with what shapes, the module that really runs for
a path, and how a new module joins the network without renaming anything.

Stitch's edits and check-module's stitch table both stand on these:

>>> rec = record_shapes(model, (1, 3, 224, 224))        # one run of a meta shadow; ``model`` is never called
>>> target = called(rec, "layer1", "after")             # the module whose output is the point "after layer1"
>>> rec.shapes[target]                                  # ((1, 64, 56, 56), (1, 64, 56, 56))
>>> name = run_beside(model, "layer1", target, block, "se", before=False)   # 'layer1_se', run from a hook
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..blockspec import Shape
from ..errors import ShapeError, SpecError, fmt_shape
from ..meta import shape_run
from .wrappers import RunAfter, RunBefore

__all__ = ["Recording", "record_shapes", "called", "add_sibling", "iterates", "run_beside", "swap_module",
           "param_count"]


@dataclass
class Recording:
    """What one meta forward of the base showed: call order and each called module's shapes."""

    order: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    macs: int = 0
    """MACs of the whole forward, counted by the profiler's own counter (:mod:`blockstitch.counting`)."""
    params: int = 0
    """Parameters of the network, each shared tensor once."""


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def record_shapes(model: nn.Module, input_shape: Shape) -> Recording:
    """Which modules run, in what order, and the shape each one takes and gives (one run of a meta shadow; the
    model itself is never called).

    >>> record_shapes(timm.create_model("resnet18"), (1, 3, 64, 64)).shapes["layer1"]
    ((1, 64, 16, 16), (1, 64, 16, 16))
    """
    return shape_run(model, [input_shape], lambda net, xs: _record(net, xs[0]))[0]


def _record(model: nn.Module, x: torch.Tensor) -> Recording:
    from ..counting import OpCounter  # the profiler's counter: one counting place (imported when counting)

    rec = Recording()
    input_shape = tuple(x.shape)
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def pre(m: nn.Module, args: Any, name: str = name) -> None:
            rec.order.append(name)

        def post(m: nn.Module, args: Any, out: Any, name: str = name) -> None:
            x, y = _first_tensor(args), _first_tensor(out)
            if x is not None and y is not None:
                rec.shapes[name] = (tuple(x.shape), tuple(y.shape))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    rec.params = param_count(model)  # parameters() yields a shared tensor once
    try:
        with torch.no_grad(), OpCounter() as counter:
            model.eval()(x)
        rec.macs = counter.macs
    except Exception as err:  # noqa: BLE001 — whatever the user's forward raises, say where and why
        raise ShapeError(f"the base network does not run at input {fmt_shape(input_shape)}: "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                         hint="give the input shape it expects (input_shape=…)") from err
    finally:
        for h in handles:
            h.remove()
    return rec


def called(rec: Recording, path: str, anchor: Literal["after", "before"] | None = None,
           doing: str = "stitched") -> str:
    """The module that actually runs for ``path``: itself, or — for a container the forward never calls (a
    repeat stack of a blockstitch network) — its last direct child (``anchor="after"``) or its first
    (``"before"``). A container that never runs and has no child that does is an error, and so is any container
    without an anchor (the message says it cannot be ``doing``, e.g. "replaced").

    >>> called(record_shapes(bs.build("resnet18"), (1, 3, 64, 64)), "layer1", "after")
    'layer1.1'
    """
    if path in rec.shapes:
        return path
    children = [p for p in rec.order if p.startswith(path + ".") and p.count(".") == path.count(".") + 1]
    if not children or anchor is None:
        doing = f"an anchor for `{anchor}:`" if anchor is not None else doing
        raise SpecError(f"'{path}' never runs as a whole in this network, so it cannot be {doing}",
                        hint=f"name the modules inside it ({path}.*)")
    return children[-1] if anchor == "after" else children[0]


_ITERATING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_CALLS_CHILDREN = re.compile(r"\.(?:named_)?(?:children|modules)\(|\b_modules\b|\bin\s+self\s*[:)]")


@functools.lru_cache(maxsize=256)
def _forward_iterates(cls: type) -> bool:
    """True for a module class whose ``forward`` runs its children in turn (``for m in self.children()``)."""
    if issubclass(cls, _ITERATING):
        return True
    try:
        source = inspect.getsource(cls.forward)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return False
    return bool(_CALLS_CHILDREN.search(source))


def iterates(module: nn.Module) -> bool:
    """True when ``module`` would run a new child by itself (an nn.Sequential/ModuleList/ModuleDict, or a forward
    that iterates its children), so a stitched block must not be registered in it.

    >>> iterates(nn.Sequential()), iterates(nn.Conv2d(1, 1, 1))
    (True, False)
    """
    return _forward_iterates(type(module))  # type: ignore[arg-type]  # a class is hashable (torch's stubs say otherwise)


def _holders(model: nn.Module, path: str) -> list[str]:
    """Where a new module for ``path`` may live, best first: its ancestors (nearest first), then the module itself,
    then its descendants — the first that does not run its children in turn takes it."""
    parts = path.split(".")
    ancestors = [".".join(parts[:cut]) for cut in range(len(parts) - 1, -1, -1)]
    below = [f"{path}.{name}" if name else path for name, _ in model.get_submodule(path).named_modules()]
    return ancestors + below


def add_sibling(model: nn.Module, path: str, suffix: str, module: nn.Module) -> str:
    """Register ``module`` next to ``path`` — in the nearest ancestor that does not run its children in turn
    (an nn.Sequential would call the new module a second time); where every ancestor does (a root
    ``nn.Sequential``, a forward iterating its children), in ``path`` itself or in a module inside it — and return
    its path. No existing parameter changes its name.

    >>> add_sibling(model, "layer1.0.conv2", "se", block)    # layer1.0 is a block, not a Sequential
    'layer1.0.conv2_se'
    >>> add_sibling(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "0", "se", block)   # a root Sequential
    '0.stitched_se'
    """
    holder_path = next((h for h in _holders(model, path)
                        if not iterates(model.get_submodule(h) if h else model)), None)
    if holder_path is None:
        raise SpecError(f"cannot stitch into '{path}': it and every module holding it or inside it run their "
                        "children in turn, which would run the new block as one of their own",
                        hint="wrap the model in a Module first")
    holder = model.get_submodule(holder_path) if holder_path else model
    inside = holder_path == path or holder_path.startswith(path + ".")
    stem = "stitched" if inside else "_".join(path.split(".")[len(holder_path.split(".")) if holder_path else 0:])
    name, i = f"{stem}_{suffix}", 2
    while name in holder._modules:
        name, i = f"{stem}_{suffix}{i}", i + 1
    holder.add_module(name, module)
    return f"{holder_path}.{name}" if holder_path else name


def run_beside(model: nn.Module, path: str, target: str, block: nn.Module, suffix: str, before: bool = False) -> str:
    """Stitch ``block`` in at ``path``: registered beside it (:func:`add_sibling`) and run from a hook on
    ``target`` (see :func:`called`) on its output, or on its first input when ``before``; returns the new name.

    >>> run_beside(model, "layer1", "layer1", SE(64), "se")
    'layer1_se'
    """
    name = add_sibling(model, path, suffix, block)
    module = model.get_submodule(target)
    if before:
        module.register_forward_pre_hook(RunBefore(block))
    else:
        module.register_forward_hook(RunAfter(block))
    return name


LAYER_ATTRIBUTES = ("f", "i", "type", "np")
"""Attributes a network's own forward reads from its layers (Ultralytics: from-index, index, type, #params);
a replacement inherits them (``type`` and ``np`` describe the new layer)."""


def param_count(module: nn.Module) -> int:
    """Parameters of ``module`` (``parameters()`` yields a shared tensor once)."""
    return sum(p.numel() for p in module.parameters())


def swap_module(model: nn.Module, path: str, new: nn.Module) -> int:
    """Put ``new`` where ``path`` is (it inherits the layer attributes the network's forward reads, see
    :data:`LAYER_ATTRIBUTES`); returns the parameter count of the module it replaced.

    >>> swap_module(model, "layer1.0.conv2", nn.Identity())
    36864
    """
    old = model.get_submodule(path)
    for attr in LAYER_ATTRIBUTES:
        if attr in old.__dict__ and attr not in new.__dict__:
            setattr(new, attr, old.__dict__[attr])
    if "type" in old.__dict__:
        new.type = f"{type(new).__module__}.{type(new).__name__}"  # type: ignore[assignment]
    if "np" in old.__dict__:
        new.np = param_count(new)  # type: ignore[assignment]
    parent_path, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, attr, new)
    return param_count(old)
