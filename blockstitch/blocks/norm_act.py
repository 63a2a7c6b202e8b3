"""Standalone norm and activation nodes (torchvision's `bn1`, `relu`), for any layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import PositiveFloat
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape, axis_index
from ..errors import ShapeError
from ..registry import register_block
from .layers import NORM_LAYOUTS, ActName, get_act, get_norm

__all__ = ["NormSpec", "ActSpec", "IdentitySpec"]


@register_block
class NormSpec(BlockSpec):
    """A norm layer over the channel axis of whatever layout flows in."""

    kind: Literal["norm"] = "norm"
    card = BlockCard("norm", aliases=("BatchNorm", "LayerNorm", "GroupNorm"))
    norm: Literal["batchnorm", "groupnorm", "layernorm", "instancenorm"] = "batchnorm"
    """Which norm; layernorm normalizes channels of `b n c`, `b h w c` and (like ConvNeXt) `b c h w`."""
    eps: PositiveFloat = 1e-5
    """Epsilon."""
    groups: int = 32
    """Groups for groupnorm (lowered to a divisor of the channels when needed)."""

    in_layouts = None  # every layout the chosen norm supports; checked in out_shape

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        shape = in_shapes[0]
        layout = self.layout_for(shape)
        return get_norm(self.norm, shape[axis_index(layout, "c")], layout, self.eps, self.groups)

    def out_layout(self, in_layout: str) -> str:
        if in_layout not in NORM_LAYOUTS[self.norm]:
            raise ShapeError(f"norm '{self.norm}' does not apply to layout '{in_layout}'",
                             expected=" or ".join(NORM_LAYOUTS[self.norm]), found=in_layout)
        return in_layout

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"norm": "batchnorm"}, [[(2, 8, 5, 5)], [(3, 8, 7, 4)]]


@register_block
class ActSpec(BlockSpec):
    """An activation function by name, for any layout."""

    kind: Literal["act"] = "act"
    card = BlockCard("op", aliases=("Activation",))
    act: ActName = "relu"
    """Which activation."""
    inplace: bool = False
    """Write the result into the input tensor (safe only when nothing else reads that tensor)."""

    in_layouts = None

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return get_act(self.act, inplace=self.inplace)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"act": "gelu"}, [[(2, 8, 5, 5)], [(3, 10, 6)]]


@register_block
class IdentitySpec(BlockSpec):
    """Passes its input through unchanged (a placeholder, or a named tap point)."""

    kind: Literal["identity"] = "identity"
    card = BlockCard("op", aliases=("Identity",))
    in_layouts = None

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.Identity()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 3, 4, 4)], [(1, 5, 7)]]
