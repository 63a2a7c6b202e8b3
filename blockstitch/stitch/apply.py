"""Applying edits to any ``nn.Module``: bind each block to the shape flowing at its target, check, stitch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ..blockspec import LAYOUTS, BlockSpec, Shape
from ..errors import RegistryError, ShapeError, SpecError, fmt_shape
from ..foreign import module_block
from ..meta import shape_run
from ..registry import get_block
from .edits import InsertEdit, RemoveEdit, ReplaceEdit, WrapEdit
from .paths import match_paths, nearest_paths
from .wrappers import Gate, GatedResidual, ResidualAround, RunAfter, RunBefore

__all__ = ["EditRecord", "record_shapes", "apply_edits"]


@dataclass
class EditRecord:
    """One applied edit at one path."""

    op: str
    pattern: str
    path: str
    kind: str
    module: str
    """Name of the new module in the network (or of the replaced one)."""
    in_shape: Shape
    out_shape: Shape
    params: int
    """Parameters the edit added (negative when it removed some)."""


@dataclass
class Recording:
    """What one meta forward of the base showed: call order and each called module's shapes."""

    order: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    macs: int = 0
    """MACs of the whole forward, counted with torch's own formulas (the profiler counts the same way)."""
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
    model itself is never called)."""
    return shape_run(model, [input_shape], lambda net, xs: _record(net, xs[0]))[0]


def _record(model: nn.Module, x: torch.Tensor) -> Recording:
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
    from ..counting import OpCounter  # the profiler's counter: one counting place

    rec.params = sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once
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


def _called(rec: Recording, path: str, op: str) -> str:
    """The module that actually runs for ``path``: itself, or — for a container the forward never calls (a
    repeat stack of a blockstitch network) — its last direct child (`after`) or first (`before`)."""
    if path in rec.shapes:
        return path
    children = [p for p in rec.order if p.startswith(path + ".") and p.count(".") == path.count(".") + 1]
    if not children or op not in ("after", "before"):
        raise SpecError(f"'{path}' never runs as a whole in this network, so it cannot be {op}d",
                        hint=f"name the modules inside it ({path}.*)")
    return children[-1] if op == "after" else children[0]


def _spec_for(block: dict[str, Any], where: str) -> BlockSpec:
    if "kind" not in block:
        raise SpecError("the block to stitch has no 'kind'", path=where, hint="e.g. block: {kind: cbam}")
    kind = block["kind"]
    try:
        if isinstance(kind, type):  # a user's nn.Module class, given from Python
            spec_cls = module_block(kind)
            return spec_cls.model_validate({**block, "kind": spec_cls.model_fields["kind"].default})
        return get_block(str(kind)).model_validate(block)
    except RegistryError as err:
        raise SpecError(str(err), path=f"{where}.kind") from None
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{first['msg']}", path=f"{where}.{loc}" if loc else where) from None


def _bind(spec: BlockSpec, shape: Shape, path: str, where: str) -> tuple[BlockSpec, Shape]:
    layout = next((lay for lay in (spec.in_layouts or tuple(LAYOUTS)) if LAYOUTS[lay] == len(shape)), None)
    if layout is None:
        raise SpecError(f"cannot bind '{spec.kind}' at '{path}': it takes {' or '.join(spec.in_layouts or ())} "
                        f"but '{path}' carries {fmt_shape(shape)}", path=where,
                        expected=" or ".join(spec.in_layouts or ()), found=fmt_shape(shape),
                        hint="pick a path whose tensor has the block's layout")
    bound = spec.with_layout(layout)
    try:
        return bound, tuple(bound.out_shape([shape]))
    except ShapeError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        raise err.located(path=where) from None
    except SpecError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        err.path = f"{where}.block.{err.path}" if err.path else where
        raise err.located() from None


def _parent(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent, _, attr = path.rpartition(".")
    return (model.get_submodule(parent) if parent else model), attr


_ITERATING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _add_sibling(model: nn.Module, path: str, suffix: str, module: nn.Module) -> str:
    """Register ``module`` next to ``path`` — in the nearest ancestor that does not run its children in turn
    (an nn.Sequential would call the new module a second time) — and return its path."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        holder_path = ".".join(parts[:cut])
        holder = model.get_submodule(holder_path) if holder_path else model
        if not isinstance(holder, _ITERATING):
            break
    else:  # pragma: no cover — the loop always reaches the root
        holder_path, holder = "", model
    if isinstance(holder, _ITERATING):
        raise SpecError(f"cannot stitch into '{path}': every module holding it is an {type(holder).__name__}, "
                        "which would run the new block as one of its own", hint="wrap the model in a Module first")
    stem = "_".join(parts[len(holder_path.split(".")) if holder_path else 0:])
    name, i = f"{stem}_{suffix}", 2
    while name in holder._modules:
        name, i = f"{stem}_{suffix}{i}", i + 1
    holder.add_module(name, module)
    return f"{holder_path}.{name}" if holder_path else name


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _build(spec: BlockSpec, shape: Shape, like: torch.Tensor | None) -> nn.Module:
    device = like.device if like is not None else None
    with torch.device(device) if device is not None else torch.device("cpu"):
        module = spec.build([shape])
    return module.to(dtype=like.dtype) if like is not None and like.dtype.is_floating_point else module


LAYER_ATTRIBUTES = ("f", "i", "type", "np")
"""Attributes a network's own forward reads from its layers (Ultralytics: from-index, index, type, #params);
a replacement inherits them (``type`` and ``np`` describe the new layer)."""


def _carry_layer_attributes(old: nn.Module, new: nn.Module) -> None:
    for attr in LAYER_ATTRIBUTES:
        if attr in old.__dict__ and attr not in new.__dict__:
            setattr(new, attr, old.__dict__[attr])
    if "type" in old.__dict__:
        new.type = f"{type(new).__module__}.{type(new).__name__}"  # type: ignore[assignment]
    if "np" in old.__dict__:
        new.np = _count(new)  # type: ignore[assignment]


def _device(like: torch.Tensor | None) -> torch.device | None:
    return like.device if like is not None else None


def _dtype(like: torch.Tensor | None) -> torch.dtype | None:
    return like.dtype if like is not None and like.dtype.is_floating_point else None


def apply_edits(model: nn.Module, rec: Recording, insert: Sequence[InsertEdit], replace: Sequence[ReplaceEdit],
                wrap: Sequence[WrapEdit], remove: Sequence[RemoveEdit]) -> list[EditRecord]:
    """Apply the edits to ``model`` in place (all shapes are checked before any module is built)."""
    paths = [n for n, _ in model.named_modules() if n]
    like = next(iter(model.parameters()), None)
    plan: list[tuple[str, str, Any, str, int]] = []  # (op, pattern, edit, path, index)

    def resolve(op: str, pattern: str, where: str) -> list[str]:
        found = match_paths(pattern, paths)
        if not found:
            raise SpecError(f"'{pattern}' matches no module of the base network", path=where,
                            hint="nearest real paths: " + ", ".join(nearest_paths(pattern, paths)))
        return found

    for i, e in enumerate(insert):
        op, pattern = ("after", e.after) if e.after is not None else ("before", e.before)
        plan += [("insert", pattern, e, p, i) for p in resolve(op, pattern, f"insert[{i}]")]  # type: ignore[arg-type]
    for group, edits in (("replace", replace), ("wrap", wrap), ("remove", remove)):
        for i, e in enumerate(edits):
            plan += [(group, e.path, e, p, i) for p in resolve(group, e.path, f"{group}[{i}]")]

    # 1. bind and check every edit on shapes alone, before any module is built
    checked = []
    for group, pattern, edit, path, i in plan:
        where = f"{group}[{i}]"
        if group == "insert":
            anchor = "after" if edit.after is not None else "before"
            target = _called(rec, path, anchor)
            x_in, x_out = rec.shapes[target]
            shape = x_out if anchor == "after" else x_in
            spec, out = _bind(_spec_for(edit.block_mapping(), f"{where}.block"), shape, path, where)
            if out != shape:
                raise ShapeError(f"inserting '{spec.kind}' {anchor} '{path}' changes {fmt_shape(shape)} into "
                                 f"{fmt_shape(out)}, but the network continues with {fmt_shape(shape)}",
                                 path=where, hint="insert a block that keeps the shape, or use replace")
            checked.append((group, pattern, edit, path, target, spec, shape, out))
            continue
        target = _called(rec, path, group)
        x_in, x_out = rec.shapes[target]
        if group == "replace":
            spec, out = _bind(_spec_for(edit.block_mapping(), f"{where}.block"), x_in, path, where)
            if out != x_out:
                raise ShapeError(f"replacing '{path}' with '{spec.kind}' changes its output from {fmt_shape(x_out)} "
                                 f"to {fmt_shape(out)}, which the rest of the network needs", path=where,
                                 expected=fmt_shape(x_out), found=fmt_shape(out),
                                 hint="adjust the block's fields (out_channels, stride) to keep the output shape")
            checked.append((group, pattern, edit, path, target, spec, x_in, out))
        else:
            if x_in != x_out:
                raise ShapeError(f"cannot {group} '{path}': it turns {fmt_shape(x_in)} into {fmt_shape(x_out)}",
                                 path=where, hint=f"only shape-keeping modules can be {group}d")
            checked.append((group, pattern, edit, path, target, None, x_in, x_out))

    # 2. build and stitch
    records = []
    for group, pattern, edit, path, target, spec, x_in, x_out in checked:
        module_at = model.get_submodule(target)
        if group == "insert":
            block = _build(spec, x_in, like)
            if edit.identity_init and not spec.init_identity(block):
                block = GatedResidual(block).to(device=_device(like), dtype=_dtype(like))
            name = _add_sibling(model, path, spec.kind, block)
            hook = RunAfter(block) if edit.after is not None else RunBefore(block)
            if edit.after is not None:
                module_at.register_forward_hook(hook)
            else:
                module_at.register_forward_pre_hook(hook)
            records.append(EditRecord("insert", pattern, path, spec.kind, name, x_in, x_out, _count(block)))
        elif group == "replace":
            block = _build(spec, x_in, like)
            old = _count(module_at)
            parent, attr = _parent(model, target)
            _carry_layer_attributes(module_at, block)
            setattr(parent, attr, block)
            records.append(EditRecord("replace", pattern, target, spec.kind, target, x_in, x_out,
                                      _count(block) - old))
        elif group == "wrap":
            gate = Gate(edit.gate_init) if edit.wrapper == "gated" else None
            name = target
            if gate is not None:
                if like is not None:
                    gate = gate.to(like.device, like.dtype)
                name = _add_sibling(model, target, "gate", gate)
            module_at.register_forward_hook(ResidualAround(gate))
            records.append(EditRecord("wrap", pattern, target, edit.wrapper, name, x_in, x_out,
                                      _count(gate) if gate is not None else 0))
        else:
            old = _count(module_at)
            parent, attr = _parent(model, target)
            identity = nn.Identity()
            _carry_layer_attributes(module_at, identity)
            setattr(parent, attr, identity)
            records.append(EditRecord("remove", pattern, target, "identity", target, x_in, x_out, -old))
    return records


