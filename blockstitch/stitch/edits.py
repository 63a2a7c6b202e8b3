"""The edits a stitch applies, as pydantic models (the same in spec files and in Python), each of which binds
itself against the recorded shapes (a shape check only, nothing is built) and then applies itself.

Adding an edit kind touches this file only: its model (``op``, its fields, ``bind``), its bound form
(``apply``), its entry in :data:`EDIT_KINDS` and its list in :class:`EditSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import nn

from ..blockspec import BlockSpec, Shape
from ..errors import ShapeError, SpecError, did_you_mean, fmt_shape, path_text, pydantic_error
from .binding import Loc, bind_block, block_spec, build_block
from .points import Recording, add_sibling, called, param_count, run_beside, swap_module
from .wrappers import Gate, GatedResidual, LayoutBridge, ResidualAround

__all__ = ["InsertEdit", "ReplaceEdit", "WrapEdit", "RemoveEdit", "EditSpec", "Edit", "Bound", "EditRecord",
           "EDIT_KINDS", "parse_edits"]


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
    """Net change in parameters (negative when it removed some); a same-size replace nets 0."""
    new: int = 0
    """Parameters the edit brought in, newly initialised (a replace's whole new block)."""
    removed: int = 0
    """Parameters of the base the edit took out (a replaced or removed module's)."""
    notes: tuple[str, ...] = ()
    """What the stitch decided for the block: a layout bridge, fields bound from the place or the paper."""


def _notes(block: nn.Module, notes: list[str]) -> tuple[str, ...]:
    bridge = [f"bridged b c h w <-> {block.layout}"] if isinstance(block, LayoutBridge) else []
    return (*bridge, *notes)


@dataclass
class Bound:
    """One edit at one matched path, its shapes checked against the recording; :meth:`apply` changes the network
    (``like`` is one of its parameters: new modules take its device and dtype)."""

    pattern: str
    path: str
    """The module the edit acts on (for an insert, the matched path; else the module that really runs)."""
    target: str
    """The module that really runs for the matched path (see :func:`~blockstitch.stitch.points.called`)."""
    x_in: Shape
    x_out: Shape

    def apply(self, model: nn.Module, like: torch.Tensor | None) -> EditRecord:
        raise NotImplementedError


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Edit(_Edit):
    """An edit kind: the module path glob it matches, and how it binds at each matched path."""

    op: ClassVar[str]
    """Its name in spec files and as a keyword of :func:`~blockstitch.stitch.stitch` (``insert``, ``wrap`` …)."""

    def glob(self) -> str:
        """The module path glob this edit matches."""
        return str(getattr(self, "path"))

    def bind(self, rec: Recording, path: str, where: Loc) -> Bound:
        """Check the edit at matched module ``path`` on the recorded shapes alone (``where``: ``("wrap", 0)``)."""
        raise NotImplementedError


def _check_block(value: Any) -> Any:
    """A block mapping (`{kind: cbam}`), or — from Python only — an nn.Module class (or a mapping whose kind is
    one). Spec files can only give mappings of plain data, so a file never names code."""
    from torch import nn

    if isinstance(value, type):
        if issubclass(value, nn.Module):
            return {"kind": value}
        raise ValueError(f"{value.__name__} is not an nn.Module class")
    if not isinstance(value, dict):
        raise ValueError(f"a block is a mapping with a 'kind' (or an nn.Module class), not {type(value).__name__}")
    kind = value.get("kind")
    if isinstance(kind, type) and not issubclass(kind, nn.Module):
        raise ValueError(f"{kind.__name__} is not an nn.Module class")
    return value


class _BlockEdit(Edit):
    block: Any
    """The block: a mapping such as `{kind: cbam}` (its channels are bound from the network); in Python also an
    nn.Module class, e.g. `block: PaperModule`."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments when the block is an nn.Module class (its channel argument is inferred)."""

    @field_validator("block")
    @classmethod
    def _block(cls, value: Any) -> Any:
        return _check_block(value)

    def block_mapping(self) -> dict[str, Any]:
        """The block as a mapping; ``args`` joined in for a module class."""
        block = dict(self.block)
        if self.args:
            block["args"] = {**block.get("args", {}), **self.args}
        return block


class InsertEdit(_BlockEdit):
    """Insert a block after (or before) every module matching a path glob."""

    op: ClassVar[str] = "insert"
    after: str | None = None
    """Module path glob to insert after, e.g. `layer*` or `layer*.*.bn3` (Ultralytics: `model.[2468]`)."""
    before: str | None = None
    """Module path glob to insert before."""
    identity_init: bool = False
    """Start as the identity, so the network first computes exactly what the base computed: the block's own last
    gate or scale is zeroed where it has one, else it is inserted as `x + gate · block(x)` with the gate at zero."""

    @model_validator(mode="after")
    def _one_anchor(self) -> InsertEdit:
        if (self.after is None) == (self.before is None):
            raise ValueError("give exactly one of `after:` or `before:`")
        return self

    def glob(self) -> str:
        return str(self.after if self.after is not None else self.before)

    def bind(self, rec: Recording, path: str, where: Loc) -> BoundInsert:
        anchor: Literal["after", "before"] = "after" if self.after is not None else "before"
        target = called(rec, path, anchor)
        x_in, x_out = rec.shapes[target]
        shape = x_out if anchor == "after" else x_in
        notes: list[str] = []
        spec, out = bind_block(block_spec(self.block_mapping(), (*where, "block"), shape, notes),
                               shape, path, where)
        if out != shape:
            raise ShapeError(f"inserting '{spec.kind}' {anchor} '{path}' changes {fmt_shape(shape)} into "
                             f"{fmt_shape(out)}, but the network continues with {fmt_shape(shape)}",
                             path=path_text(where), hint="insert a block that keeps the shape, or use replace")
        return BoundInsert(self.glob(), path, target, shape, out, self, spec, notes)


@dataclass
class BoundInsert(Bound):
    edit: InsertEdit
    spec: BlockSpec
    notes: list[str]

    def apply(self, model: nn.Module, like: torch.Tensor | None) -> EditRecord:
        block = build_block(self.spec, self.x_in, like)
        inner = block.block if isinstance(block, LayoutBridge) else block
        notes = _notes(block, self.notes)
        if self.edit.identity_init and not self.spec.init_identity(inner):
            block = GatedResidual(block).to(device=like.device if like is not None else None,
                                            dtype=like.dtype if like is not None and like.dtype.is_floating_point
                                            else None)
        name = run_beside(model, self.path, self.target, block, self.spec.kind, before=self.edit.before is not None)
        n = param_count(block)
        return EditRecord("insert", self.pattern, self.path, self.spec.kind, name, self.x_in, self.x_out, n, n,
                          notes=notes)


class ReplaceEdit(_BlockEdit):
    """Replace every module matching a path glob with a block (same output shape required)."""

    op: ClassVar[str] = "replace"
    path: str
    """Module path glob."""

    def bind(self, rec: Recording, path: str, where: Loc) -> BoundReplace:
        target = called(rec, path, doing="replaced")
        x_in, x_out = rec.shapes[target]
        notes: list[str] = []
        spec, out = bind_block(block_spec(self.block_mapping(), (*where, "block"), x_in, notes),
                               x_in, path, where)
        if out != x_out:
            raise ShapeError(f"replacing '{path}' with '{spec.kind}' changes its output from {fmt_shape(x_out)} "
                             f"to {fmt_shape(out)}, which the rest of the network needs", path=path_text(where),
                             expected=fmt_shape(x_out), found=fmt_shape(out),
                             hint="adjust the block's fields (out_channels, stride) to keep the output shape")
        return BoundReplace(self.path, target, target, x_in, out, spec, notes)


@dataclass
class BoundReplace(Bound):
    spec: BlockSpec
    notes: list[str]

    def apply(self, model: nn.Module, like: torch.Tensor | None) -> EditRecord:
        block = build_block(self.spec, self.x_in, like)
        old = swap_module(model, self.target, block)
        n = param_count(block)
        return EditRecord("replace", self.pattern, self.target, self.spec.kind, self.target, self.x_in, self.x_out,
                          n - old, n, old, notes=_notes(block, self.notes))


def _shape_kept(rec: Recording, path: str, where: Loc, verb: str, done: str) -> tuple[str, Shape]:
    """(the module that runs for ``path``, its shape) for an edit only a shape-keeping module can take."""
    target = called(rec, path, doing=done)
    x_in, x_out = rec.shapes[target]
    if x_in != x_out:
        raise ShapeError(f"cannot {verb} '{path}': it turns {fmt_shape(x_in)} into {fmt_shape(x_out)}",
                         path=path_text(where), hint=f"only shape-keeping modules can be {done}")
    return target, x_in


class WrapEdit(Edit):
    """Wrap every module matching a path glob in a residual connection: `x + gate · module(x)`."""

    op: ClassVar[str] = "wrap"
    path: str
    """Module path glob (the module must keep the shape of its input)."""
    wrapper: Literal["residual", "gated"] = "gated"
    """`residual`: x + module(x); `gated`: x + gate · module(x) with a learned gate."""
    gate_init: float = 1.0
    """Initial gate value for `gated` (0 makes the wrapped module start switched off)."""

    def bind(self, rec: Recording, path: str, where: Loc) -> BoundWrap:
        target, shape = _shape_kept(rec, path, where, "wrap", "wrapped")
        return BoundWrap(self.path, target, target, shape, shape, self)


@dataclass
class BoundWrap(Bound):
    edit: WrapEdit

    def apply(self, model: nn.Module, like: torch.Tensor | None) -> EditRecord:
        gate = Gate(self.edit.gate_init) if self.edit.wrapper == "gated" else None
        name = self.target
        if gate is not None:
            if like is not None:
                gate = gate.to(like.device, like.dtype)
            name = add_sibling(model, self.target, "gate", gate)
        model.get_submodule(self.target).register_forward_hook(ResidualAround(gate))
        n = param_count(gate) if gate is not None else 0
        return EditRecord("wrap", self.pattern, self.target, self.edit.wrapper, name, self.x_in, self.x_out, n, n)


class RemoveEdit(Edit):
    """Remove every module matching a path glob (it becomes an identity; it must keep the shape)."""

    op: ClassVar[str] = "remove"
    path: str
    """Module path glob."""

    def bind(self, rec: Recording, path: str, where: Loc) -> BoundRemove:
        target, shape = _shape_kept(rec, path, where, "remove", "removed")
        return BoundRemove(self.path, target, target, shape, shape)


@dataclass
class BoundRemove(Bound):
    def apply(self, model: nn.Module, like: torch.Tensor | None) -> EditRecord:
        old = swap_module(model, self.target, nn.Identity())
        return EditRecord("remove", self.pattern, self.target, "identity", self.target, self.x_in, self.x_out, -old,
                          0, old)


class EditSpec(_Edit):
    """A network written as an edit of another: `extends` a zoo name, a spec path or `timm:<model>`."""

    name: str
    """Name of the edited network."""
    description: str = ""
    """Free text."""
    extends: str
    """The base: a zoo name (`resnet50`), a spec path, or `timm:<model>` (random weights, nothing downloaded)."""
    input: list[int] | None = Field(None, min_length=1, max_length=4)
    """Input shape without the batch; default the base's."""
    weights: str | None = None
    """A local `.safetensors`/`.pt` file loaded into the base before editing (relative to this spec file)."""
    insert: list[InsertEdit] = Field(default_factory=list)
    """Blocks to insert."""
    replace: list[ReplaceEdit] = Field(default_factory=list)
    """Modules to replace."""
    wrap: list[WrapEdit] = Field(default_factory=list)
    """Modules to wrap."""
    remove: list[RemoveEdit] = Field(default_factory=list)
    """Modules to remove."""

    def edits(self) -> dict[str, list[Edit]]:
        """The edits by kind, as :func:`~blockstitch.stitch.stitch` takes them."""
        return {op: list(getattr(self, op)) for op in EDIT_KINDS}


EDIT_KINDS: dict[str, type[Edit]] = {kind.op: kind for kind in (InsertEdit, ReplaceEdit, WrapEdit, RemoveEdit)}
"""Every edit kind by name, in the order a stitch applies them."""


def parse_edits(given: Mapping[str, Sequence[Any]]) -> dict[str, list[Edit]]:
    """Validate edits given by kind (dicts as in spec files, or edit models) into edit models, with located
    errors (``insert[0].block``); an unknown kind names the nearest one.

    >>> parse_edits({"insert": [{"after": "layer*", "block": {"kind": "se"}}]})["insert"][0].after
    'layer*'
    """
    for op in given:
        if op not in EDIT_KINDS:
            raise SpecError(f"unknown edit kind '{op}'{did_you_mean(op, EDIT_KINDS)}", expected=", ".join(EDIT_KINDS))
    parsed: dict[str, list[Edit]] = {}
    for op, kind in EDIT_KINDS.items():
        parsed[op] = []
        for i, item in enumerate(given.get(op, ())):
            if isinstance(item, kind):
                parsed[op].append(item)
                continue
            try:
                parsed[op].append(kind.model_validate(item))
            except ValidationError as err:
                raise pydantic_error(err, (op, i), model=kind, what=f"an edit in `{op}:`") from None
    return parsed
