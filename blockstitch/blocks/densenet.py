"""DenseNet: a dense block (one node that grows its channels) and the transition between dense blocks.

Each dense layer reads the concatenation of the block's input and every earlier layer's output and adds
`growth_rate` new channels (BN → ReLU → 1×1 conv to `bn_size × growth_rate` → BN → ReLU → 3×3 conv), so a
block of L layers turns C channels into C + L × growth_rate. Children are named as torchvision's
(`denselayer1.norm1`, `transition1.conv`…), so a torchvision DenseNet's state_dict loads by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..errors import ShapeError
from ..registry import register_block
from .ops import conv_macs

__all__ = ["DenseBlockSpec", "DenseBlock", "DenseLayer", "TransitionSpec"]

_PAPER = Paper("Densely Connected Convolutional Networks", "CVPR", 2017, "https://arxiv.org/abs/1608.06993")


class DenseLayer(nn.Module):
    """BN-ReLU-1×1 conv (bottleneck) then BN-ReLU-3×3 conv to ``growth`` channels, with dropout after."""

    def __init__(self, cin: int, growth: int, bn_size: int, drop_rate: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin, eps=eps)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth, eps=eps)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)  # every earlier output, channels stacked
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        return F.dropout(x, p=self.drop_rate, training=self.training) if self.drop_rate > 0 else x


class DenseBlock(nn.ModuleDict):
    """``denselayer1 … denselayerL``; returns the input and every layer's output, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


@register_block
class DenseBlockSpec(BlockSpec):
    """DenseNet dense block: `layers` dense layers, each adding `growth_rate` channels to the concatenation."""

    kind: Literal["dense_block"] = "dense_block"
    card = BlockCard("block", paper=_PAPER, aliases=("DenseBlock", "_DenseBlock"),
                     insert_where="between transitions of a DenseNet; output has in + layers × growth_rate "
                                  "channels")
    layers: PositiveInt = Field(le=512)
    """Number of dense layers (6, 12, 24, 16 in DenseNet-121)."""
    growth_rate: PositiveInt = 32
    """Channels each layer adds (k in the paper)."""
    bn_size: PositiveInt = 4
    """Bottleneck width factor: the 1×1 conv gives bn_size × growth_rate channels."""
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout after each layer (training only)."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """BatchNorm epsilon."""

    channel_fields = ("growth_rate",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        return (b, c + self.layers * self.growth_rate, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        inner = self.bn_size * self.growth_rate
        total = 0
        for i in range(self.layers):
            total += conv_macs((b, inner, h, w), c + i * self.growth_rate, (1, 1))
            total += conv_macs((b, self.growth_rate, h, w), inner, (3, 3))
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return DenseBlock({f"denselayer{i + 1}": DenseLayer(c + i * self.growth_rate, self.growth_rate,
                                                            self.bn_size, self.drop_rate, self.norm_eps)
                           for i in range(self.layers)})

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"layers": 3, "growth_rate": 4, "bn_size": 2}, [[(2, 6, 5, 5)], [(1, 6, 4, 7)]]


class Transition(nn.Sequential):
    """``norm`` → ``relu`` → 1×1 ``conv`` → 2×2 average ``pool`` (torchvision's names)."""

    def __init__(self, cin: int, cout: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


@register_block
class TransitionSpec(BlockSpec):
    """DenseNet transition: BN → ReLU → 1×1 conv (compressing the channels) → 2×2 average pool."""

    kind: Literal["transition"] = "transition"
    card = BlockCard("down", paper=_PAPER, aliases=("Transition", "_Transition"), size_rule="min:2",
                     insert_where="between dense blocks")
    compression: float = Field(0.5, gt=0.0, le=1.0)
    """Output channels = floor(input channels × compression) (θ in the paper), unless `out_channels` is set."""
    out_channels: PositiveInt | None = None
    """Explicit output channels."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """BatchNorm epsilon."""

    channel_fields = ("out_channels",)

    def _out(self, cin: int) -> int:
        return self.out_channels or max(1, int(cin * self.compression))

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        if h < 2 or w < 2:
            raise ShapeError("'transition' halves h and w with a 2×2 pool", expected="h, w ≥ 2",
                             found=f"{h}×{w}", in_shapes=in_shapes)
        return (b, self._out(c), h // 2, w // 2)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return conv_macs((b, self._out(c), h, w), c, (1, 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return Transition(c, self._out(c), self.norm_eps)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 8, 6, 6)], [(1, 10, 5, 7)]]
