"""The edits a stitch applies, as pydantic models (the same in spec files and in Python)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["InsertEdit", "ReplaceEdit", "WrapEdit", "RemoveEdit", "EditSpec"]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


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


class _BlockEdit(_Edit):
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


class ReplaceEdit(_BlockEdit):
    """Replace every module matching a path glob with a block (same output shape required)."""

    path: str
    """Module path glob."""


class WrapEdit(_Edit):
    """Wrap every module matching a path glob in a residual connection: `x + gate · module(x)`."""

    path: str
    """Module path glob (the module must keep the shape of its input)."""
    wrapper: Literal["residual", "gated"] = "gated"
    """`residual`: x + module(x); `gated`: x + gate · module(x) with a learned gate."""
    gate_init: float = 1.0
    """Initial gate value for `gated` (0 makes the wrapped module start switched off)."""


class RemoveEdit(_Edit):
    """Remove every module matching a path glob (it becomes an identity; it must keep the shape)."""

    path: str
    """Module path glob."""


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
