"""Flatten, linear (over the channel axis of any channels-last layout, tokens included) and dropout."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..registry import register_block
from .ops import linear_macs

__all__ = ["FlattenSpec", "LinearSpec", "DropoutSpec"]


@register_block
class FlattenSpec(BlockSpec):
    """Flatten everything after the batch axis: `b c h w` → `b (c h w)`, laid out as `b c`."""

    kind: Literal["flatten"] = "flatten"
    card = BlockCard("layout", aliases=("Flatten",))
    in_layouts = None

    def out_layout(self, in_layout: str) -> str:
        return "b c"

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        x = in_shapes[0]
        return (x[0], math.prod(x[1:]))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.Flatten(1)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 4, 3, 3)], [(1, 6, 2, 5)]]


@register_block
class LinearSpec(BlockSpec):
    """Fully connected layer on the last (channel) axis: `b c`, or per token on `b n c` / `b h w c`."""

    kind: Literal["linear"] = "linear"
    card = BlockCard("op", aliases=("Linear",))
    out_features: PositiveInt
    """Output features."""
    bias: bool = True
    """Add a learned bias."""

    in_layouts = ("b c", "b n c", "b h w c")
    channel_fields = ("out_features",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return (*in_shapes[0][:-1], self.out_features)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return linear_macs(in_shapes[0], self.out_features)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.Linear(in_shapes[0][-1], self.out_features, self.bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_features": 6}, [[(2, 10)], [(1, 7, 10)]]


@register_block
class DropoutSpec(BlockSpec):
    """Dropout (active in training mode only), any layout."""

    kind: Literal["dropout"] = "dropout"
    card = BlockCard("op", aliases=("Dropout",))
    p: float = Field(0.5, ge=0.0, lt=1.0)
    """Probability of zeroing an element."""

    in_layouts = None

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.Dropout(self.p)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"p": 0.1}, [[(2, 10)], [(1, 4, 6, 6)]]
