"""The edits a stitch applies, as pydantic models (the same in spec files and in Python)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["InsertEdit", "ReplaceEdit", "WrapEdit", "RemoveEdit", "EditSpec"]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class InsertEdit(_Edit):
    """Insert a block after (or before) every module matching a path glob."""

    after: str | None = None
    """Module path glob to insert after, e.g. `layer*` or `layer*.*.bn3`."""
    before: str | None = None
    """Module path glob to insert before."""
    block: dict[str, Any]
    """The block to insert, e.g. `{kind: cbam}`; its channels are bound from the network."""
    identity_init: bool = False
    """Insert as `x + gate · block(x)` with the gate at zero, so the network starts as the base computed."""

    @model_validator(mode="after")
    def _one_anchor(self) -> InsertEdit:
        if (self.after is None) == (self.before is None):
            raise ValueError("give exactly one of `after:` or `before:`")
        return self


class ReplaceEdit(_Edit):
    """Replace every module matching a path glob with a block (same output shape required)."""

    path: str
    """Module path glob."""
    block: dict[str, Any]
    """The replacement block."""


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
