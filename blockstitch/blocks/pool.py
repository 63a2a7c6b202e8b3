"""Pooling: windowed max/avg, adaptive, and global pooling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import NonNegativeInt, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..registry import register_block
from .ops import pair, spatial

__all__ = ["MaxPoolSpec", "AvgPoolSpec", "AdaptiveAvgPoolSpec", "AdaptiveMaxPoolSpec", "GlobalPoolSpec"]


class _WindowPoolSpec(BlockSpec):
    kernel_size: PositiveInt = 2
    """Window size."""
    stride: PositiveInt | None = None
    """Stride; default the kernel size."""
    padding: NonNegativeInt = 0
    """Implicit padding on both sides."""
    ceil_mode: bool = False
    """Round the output size up (GoogLeNet) instead of down."""

    stride_fields = ()  # a pool in a repeat stack keeps its stride

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        x = in_shapes[0]
        k, s, p = self.kernel_size, self.stride or self.kernel_size, self.padding
        return (*x[:2], *spatial(self.kind, x, (k, k), (s, s), (p, p), ceil=self.ceil_mode))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"kernel_size": 3, "stride": 2, "padding": 1}, [[(2, 4, 9, 9)], [(1, 4, 8, 5)]]


@register_block
class MaxPoolSpec(_WindowPoolSpec):
    """2-d max pooling."""

    kind: Literal["maxpool"] = "maxpool"
    card = BlockCard("down", aliases=("MaxPool", "MaxPool2d"))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.MaxPool2d(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)


@register_block
class AvgPoolSpec(_WindowPoolSpec):
    """2-d average pooling."""

    kind: Literal["avgpool"] = "avgpool"
    card = BlockCard("down", aliases=("AvgPool", "AvgPool2d"))
    count_include_pad: bool = True
    """Count padded zeros in the average."""

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.AvgPool2d(self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class _AdaptivePoolSpec(BlockSpec):
    output_size: PositiveInt | tuple[PositiveInt, PositiveInt] = 1
    """Output (h, w), whatever the input size."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return (*in_shapes[0][:2], *pair(self.output_size))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"output_size": [2, 3]}, [[(2, 4, 9, 9)], [(1, 4, 5, 7)]]


@register_block
class AdaptiveAvgPoolSpec(_AdaptivePoolSpec):
    """Adaptive average pooling to a fixed output size (`output_size: 1` is ResNet's `avgpool`)."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    card = BlockCard("op", aliases=("AdaptiveAvgPool2d",))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.AdaptiveAvgPool2d(pair(self.output_size))


@register_block
class AdaptiveMaxPoolSpec(_AdaptivePoolSpec):
    """Adaptive max pooling to a fixed output size."""

    kind: Literal["adaptive_maxpool"] = "adaptive_maxpool"
    card = BlockCard("op", aliases=("AdaptiveMaxPool2d",))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return nn.AdaptiveMaxPool2d(pair(self.output_size))


@register_block
class GlobalPoolSpec(BlockSpec):
    """Global average or max pooling over h, w, flattened to `b c` (or kept as `b c 1 1`)."""

    kind: Literal["global_pool"] = "global_pool"
    card = BlockCard("op", aliases=("GlobalPool", "GAP"), insert_where="before the classifier")
    op: Literal["avg", "max"] = "avg"
    """Average or max."""
    flatten: bool = True
    """Return `b c` instead of `b c 1 1`."""

    def out_layout(self, in_layout: str) -> str:
        return "b c" if self.flatten else in_layout

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c = in_shapes[0][:2]
        return (b, c) if self.flatten else (b, c, 1, 1)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        pool = nn.AdaptiveAvgPool2d(1) if self.op == "avg" else nn.AdaptiveMaxPool2d(1)
        return nn.Sequential(pool, nn.Flatten(1)) if self.flatten else pool

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"op": "max"}, [[(2, 4, 9, 9)], [(1, 4, 5, 7)]]
