"""The base of every block spec: a pydantic model that knows its layout, shape, MACs and how to build itself.

A block is one file: its spec (a subclass of :class:`BlockSpec`) and its ``nn.Module`` side by side. The spec
states only what a human would write (``out_channels``, ``stride``…); every input size — ``in_channels``
included — arrives as ``in_shapes`` (batch first), found by the assembler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, PrivateAttr
from typing_extensions import Self

from .errors import ShapeError, fmt_shape

if TYPE_CHECKING:  # the base class names modules only in annotations: listing blocks needs no torch
    from torch import nn

__all__ = ["BlockSpec", "BlockCard", "Paper", "CATEGORIES", "Shape", "TensorInfo", "LAYOUTS", "axis_index",
           "paper_names", "field_aliases"]

Shape = tuple[int, ...]
"""A tensor shape, batch first: ``(b, c, h, w)``."""

LAYOUTS: dict[str, int] = {"b c h w": 4, "b h w c": 4, "b n c": 3, "b c": 2, "b c l": 3}
"""The layouts the assembler knows, as einops axis patterns, with their ranks."""


def paper_names(name: str, *aliases: str) -> AliasChoices:
    """A field's ``validation_alias``: its own name, then the names the paper's code gives the same argument, so
    a spec copied from the paper validates (EMA's ``factor`` is its ``groups``). Giving two of them is refused
    (``extra="forbid"``); the block's card lists the aliases.

    >>> groups: PositiveInt = Field(32, validation_alias=paper_names("groups", "factor"))
    """
    return AliasChoices(name, *aliases)


def field_aliases(name: str, field: Any) -> list[str]:
    """The other names a spec may give field ``name`` (see :func:`paper_names`), in order.

    >>> field_aliases("groups", EMASpec.model_fields["groups"])
    ['factor']
    """
    alias = getattr(field, "validation_alias", None)
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if isinstance(alias, str) else []
    return [c for c in choices if isinstance(c, str) and c != name]


def axis_index(layout: str, axis: str) -> int:
    """Position of ``axis`` in ``layout``: ``axis_index("b n c", "c") == 2``."""
    names = layout.split()
    if axis not in names:
        raise ShapeError(f"axis '{axis}' is not in layout '{layout}'", expected=f"one of {names}", found=axis)
    return names.index(axis)


CATEGORIES = ("attention", "conv", "down", "up", "fusion", "token_mixer", "block", "neck", "head", "stem", "norm",
              "layout", "op", "adapter")
"""What a block is for, as `blockstitch blocks --category` filters it (the first eight are the library's)."""


@dataclass(frozen=True)
class Paper:
    """Where a block comes from: cite it."""

    title: str
    venue: str
    year: int
    url: str
    """arXiv or DOI link."""


@dataclass(frozen=True)
class BlockCard:
    """What a user reads before stitching a block in: its paper, category, the names the popular collections
    give it, its contract (the same vocabulary `check-module` reports) and where papers usually insert it.

    Number of inputs and layouts come from the spec class itself (``arity``, ``in_layouts``, ``out_layout``).
    """

    category: str
    """One of :data:`CATEGORIES`."""
    paper: Paper | None = None
    aliases: tuple[str, ...] = ()
    """Names users know from other collections (`CoordAtt`, `CA`); `blocks --search` finds them."""
    size_rule: str = "any"
    """Spatial/token size rule: `any`, `multiple_of:K`, `min:M`, `square`, `fixed:HxW`, `area:HxW` (H·W positions
    in any shape) — as check-module says."""
    channel_rule: str = "any"
    """Channel rule, e.g. `any`, `multiple_of:heads`, `min:8`."""
    insert_where: str = ""
    """Where papers usually insert it, e.g. `after each residual stage`, `before the head`."""
    notes: str = ""
    """Differences from the paper or the reference code, bugs found in references, missing CUDA ops."""


@dataclass(frozen=True)
class TensorInfo:
    """What the assembler knows about a tensor flowing between nodes."""

    shape: Shape
    layout: str
    grid: tuple[int, int] | None = None
    """For token layouts: the (h, w) grid the tokens came from, when known."""
    prefix: int = 0
    """For token layouts: leading tokens that are not on the grid (a class token)."""

    def describe(self) -> str:
        """``1×197×768 (b n c, 1 class token + 14×14 grid)``."""
        extra = ""
        if self.grid is not None:
            extra = f", {self.prefix} prefix token + " if self.prefix else ", "
            extra += f"{self.grid[0]}×{self.grid[1]} grid"
        return f"{fmt_shape(self.shape)} ({self.layout}{extra})"


class BlockSpec(BaseModel):
    """Base class of block specs. Subclass it, set ``kind: Literal["name"] = "name"``, and register it.

    Class-level declarations a block may override:

    * ``in_layouts`` — the layouts it accepts (einops axis patterns); ``None`` means any layout, passed through.
    * ``arity`` — how many inputs it takes; ``None`` means two or more (merges).
    * ``channel_fields`` — fields scaled by the network's width multiplier.
    * ``stride_fields`` — fields reset to 1 for every block after the first of a ``repeat`` stack.
    * ``first_only_fields`` — fields that describe the first block of a ``repeat`` stack only; the rest get the
      field's default (a dilated ResNet stage's ``first_dilation``).
    * ``size_only_inputs`` — positions of inputs read only for their size (no gradient flows to them).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    kind: str
    """The block kind, as registered."""

    in_layouts: ClassVar[tuple[str, ...] | None] = ("b c h w",)
    arity: ClassVar[int | None] = 1
    channel_fields: ClassVar[tuple[str, ...]] = ()
    stride_fields: ClassVar[tuple[str, ...]] = ("stride",)
    first_only_fields: ClassVar[tuple[str, ...]] = ()
    size_only_inputs: ClassVar[tuple[int, ...]] = ()
    map_size_fields: ClassVar[tuple[str, ...]] = ()
    """Fields stating the (H, W) map the block's weights are built for; a stitch binds them from the shape where
    the block goes unless they are given."""
    card: ClassVar[BlockCard | None] = None
    """The block's card (paper, category, aliases, contract); every block of the verified library has one."""
    _layout: str | None = PrivateAttr(default=None)

    def with_layout(self, layout: str) -> Self:
        """A copy bound to the layout of its (first) input, as the assembler resolved it."""
        new = self.model_copy()
        new._layout = layout
        return new

    def layout_for(self, shape: Shape) -> str:
        """The bound layout, else the first accepted layout (or known layout) of this rank."""
        if self._layout is not None:
            return self._layout
        for layout in (self.in_layouts or ()) + tuple(LAYOUTS):
            if LAYOUTS.get(layout) == len(shape):
                return layout
        raise ShapeError(f"'{self.kind}' got a {len(shape)}-d input, which no known layout has",
                         expected=", ".join(self.in_layouts or LAYOUTS), found=fmt_shape(shape))

    # ---- what every block implements -------------------------------------------------------------
    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        """Output shape for these input shapes; raise :class:`ShapeError` when they do not fit."""
        raise NotImplementedError

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        """Multiply-accumulates of one forward pass, counted as ``torch.utils.flop_counter`` counts them
        (convolutions, matmuls, linear, attention), so FLOPs = 2 × MACs."""
        raise NotImplementedError

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        """The plain ``nn.Module`` for these input shapes (built on the current default device)."""
        raise NotImplementedError

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        """Fields and two sets of input shapes that the registry-wide tests build and run."""
        raise NotImplementedError

    def init_identity(self, module: nn.Module) -> bool:
        """Re-initialise ``module`` (built by this spec) in place so it computes exactly its input — a zero last
        gate, layer scale or residual scale — and return True; return False when the block has no such
        parameter (the stitcher then wraps it in a zero-gated residual). Only shape-keeping blocks are asked.

        >>> spec.init_identity(module) and torch.equal(module(x), x)
        True
        """
        return False

    # ---- several named outputs (a backbone's stages) ---------------------------------------------
    def output_names(self) -> tuple[str, ...]:
        """Names of extra outputs other nodes can take `from: <id>.<name>`; empty for one output.

        A block with named outputs returns a list from its module, one tensor per name, and its
        ``out_shape`` is that of the last one (what `from: <id>` means)."""
        return ()

    def out_shapes(self, in_shapes: Sequence[Shape]) -> list[Shape]:
        """Shapes of every named output, in `output_names` order."""
        return [self.out_shape(in_shapes)]

    # ---- layout hooks, with the common defaults ---------------------------------------------------
    def out_layout(self, in_layout: str) -> str:
        """Layout of the output, given the layout of the (first) input."""
        return in_layout

    def out_tokens(self, inputs: Sequence[TensorInfo], out_shape: Shape) -> tuple[tuple[int, int] | None, int]:
        """``(grid, prefix)`` of a token output: kept from the first input while the token count is unchanged."""
        first = inputs[0]
        if first.layout == "b n c" and len(out_shape) == 3 and out_shape[1] == first.shape[1]:
            return first.grid, first.prefix
        return None, 0

    # ---- helpers for subclasses -------------------------------------------------------------------
    def expect_rank(self, in_shapes: Sequence[Shape], rank: int, layout: str) -> None:
        """Raise a clear :class:`ShapeError` unless every input has ``rank`` dimensions."""
        for shape in in_shapes:
            if len(shape) != rank:
                raise ShapeError(
                    f"'{self.kind}' expects {rank}-d input ({layout})",
                    expected=layout,
                    found=fmt_shape(shape),
                    in_shapes=in_shapes,
                )
