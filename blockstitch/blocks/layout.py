"""Layout bridges: einops `rearrange` as a block, and the rules the assembler uses to bridge layouts.

Between a block that emits `b c h w` and one that takes `b n c` the assembler inserts a named
`rearrange` node (`b c h w -> b (h w) c`) and lists it in the plan. Going back from tokens to a grid needs
h and w: the assembler knows them when the tokens came from a grid (a bridge or a patch embedding) and
refuses, saying why, when it does not (e.g. a class token was prepended).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from einops import EinopsError, rearrange
from einops.layers.torch import Rearrange
from pydantic import Field
from torch import nn

from ..blockspec import LAYOUTS, BlockCard, BlockSpec, Shape, TensorInfo
from ..errors import ShapeError, fmt_shape
from ..registry import register_block

__all__ = ["RearrangeSpec", "bridge"]


@register_block
class RearrangeSpec(BlockSpec):
    """An einops `rearrange` pattern, e.g. `b c h w -> b (h w) c`; `axes` binds sizes einops cannot infer."""

    kind: Literal["rearrange"] = "rearrange"
    card = BlockCard("layout", aliases=("Rearrange",))
    pattern: str
    """einops pattern, `left -> right`."""
    axes: dict[str, int] = Field(default_factory=dict)
    """Sizes of axes the pattern splits, e.g. `{h: 14}`."""
    layout: Literal["b c h w", "b h w c", "b n c", "b c", "b c l"] | None = None
    """Layout of the result; default the right side of the pattern when it is a known layout."""

    in_layouts = None

    def out_layout(self, in_layout: str) -> str:
        if self.layout is not None:
            return self.layout
        right = " ".join(self.pattern.split("->")[-1].split())
        if right in LAYOUTS:
            return right
        if right.replace("(h w)", "n") in LAYOUTS:
            return right.replace("(h w)", "n")
        raise ShapeError(f"cannot tell the layout after '{self.pattern}'", expected="a `layout:` field",
                         hint=f"add layout: one of {', '.join(LAYOUTS)}")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        try:
            return tuple(rearrange(torch.empty(in_shapes[0], device="meta"), self.pattern, **self.axes).shape)
        except EinopsError as err:
            raise ShapeError(f"rearrange '{self.pattern}' does not fit the input: {str(err).splitlines()[0]}",
                             in_shapes=in_shapes, found=fmt_shape(in_shapes[0])) from None

    def out_tokens(self, inputs: Sequence[TensorInfo], out_shape: Shape) -> tuple[tuple[int, int] | None, int]:
        src = inputs[0]
        if src.layout == "b c h w" and len(out_shape) == 3:
            return (src.shape[2], src.shape[3]), 0  # tokens on the grid they came from
        if src.layout == "b h w c" and len(out_shape) == 3:
            return (src.shape[1], src.shape[2]), 0
        return super().out_tokens(inputs, out_shape)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return Rearrange(self.pattern, **self.axes)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"pattern": "b c h w -> b (h w) c"}, [[(2, 4, 3, 3)], [(1, 4, 5, 2)]]


_BRIDGES = {
    ("b c h w", "b n c"): "b c h w -> b (h w) c",
    ("b c h w", "b h w c"): "b c h w -> b h w c",
    ("b h w c", "b c h w"): "b h w c -> b c h w",
    ("b h w c", "b n c"): "b h w c -> b (h w) c",
    ("b n c", "b c h w"): "b (h w) c -> b c h w",
    ("b n c", "b h w c"): "b (h w) c -> b h w c",
}


def bridge(src: TensorInfo, dst_layout: str) -> RearrangeSpec:
    """The rearrange that turns `src` into `dst_layout`, or a :class:`ShapeError` saying why there is none."""
    pattern = _BRIDGES.get((src.layout, dst_layout))
    if pattern is None:
        hint = "add a global_pool/flatten node" if dst_layout == "b c" or src.layout == "b c" else None
        raise ShapeError(f"no bridge from layout '{src.layout}' to '{dst_layout}'", expected=dst_layout,
                         found=f"{src.layout} {fmt_shape(src.shape)}", hint=hint)
    axes: dict[str, int] = {}
    if src.layout == "b n c":
        if src.grid is None or src.prefix:
            why = (f"{src.shape[1]} tokens are {src.prefix} prefix token(s) + a {src.grid[0]}×{src.grid[1]} grid"
                   if src.grid is not None else f"the {src.shape[1]} tokens did not come from a known h×w grid")
            raise ShapeError(f"cannot bridge tokens back to '{dst_layout}': {why}", found=src.describe(),
                             hint="bridge before adding a class token, or add an explicit rearrange node "
                                  "with its axes (e.g. {pattern: 'b (h w) c -> b c h w', axes: {h: 14}})")
        axes = {"h": src.grid[0], "w": src.grid[1]}
    return RearrangeSpec(pattern=pattern, axes=axes, layout=dst_layout)
