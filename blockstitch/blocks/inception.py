"""GoogLeNet's Inception (v1) module: four parallel branches concatenated along channels.

Names follow torchvision (`branch1`, `branch2.0`, …, each a conv unit with `.conv`/`.bn`), so torchvision's
GoogLeNet weights load by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..registry import register_block
from .conv import ConvSpec
from .layers import ActName, NormName
from .ops import conv_macs

__all__ = ["InceptionSpec", "Inception"]


class Inception(nn.Module):
    """1×1 | 1×1→3×3 | 1×1→k×k | 3×3 max-pool→1×1, concatenated."""

    def __init__(self, branch1: nn.Module, branch2: nn.Module, branch3: nn.Module, branch4: nn.Module) -> None:
        super().__init__()
        self.branch1, self.branch2, self.branch3, self.branch4 = branch1, branch2, branch3, branch4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


@register_block
class InceptionSpec(BlockSpec):
    """GoogLeNet Inception block with configurable branch widths (torchvision's field names)."""

    kind: Literal["inception"] = "inception"
    card = BlockCard(
        "block",
        paper=Paper("Going Deeper with Convolutions", "CVPR", 2015, "https://arxiv.org/abs/1409.4842"),
        aliases=("Inception", "InceptionBlock", "InceptionModule"),
        insert_where="stacked in the body (GoogLeNet)",
    )
    ch1x1: PositiveInt
    """Width of the 1×1 branch."""
    ch3x3red: PositiveInt
    """1×1 reduction before the 3×3 branch."""
    ch3x3: PositiveInt
    """Width of the 3×3 branch."""
    ch5x5red: PositiveInt
    """1×1 reduction before the third branch."""
    ch5x5: PositiveInt
    """Width of the third branch."""
    pool_proj: PositiveInt
    """Width of the 1×1 after the 3×3 max-pool."""
    branch3_kernel: Literal[3, 5] = 3
    """Kernel of the third branch: 5 in the paper, 3 in torchvision's GoogLeNet (kept for its weights)."""
    norm: NormName = "batchnorm"
    """Norm of every conv unit."""
    norm_eps: PositiveFloat = 1e-3
    """Norm epsilon (torchvision's GoogLeNet uses 1e-3)."""
    act: ActName = "relu"
    """Activation of every conv unit."""

    channel_fields = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")

    def _unit(self, out: int, k: int = 1) -> ConvSpec:
        return ConvSpec(out_channels=out, kernel_size=k, norm=self.norm, norm_eps=self.norm_eps, act=self.act)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        k = self.branch3_kernel
        terms = [(self.ch1x1, c, 1), (self.ch3x3red, c, 1), (self.ch3x3, self.ch3x3red, 3),
                 (self.ch5x5red, c, 1), (self.ch5x5, self.ch5x5red, k), (self.pool_proj, c, 1)]
        return sum(conv_macs((b, out, h, w), cin, (kk, kk)) for out, cin, kk in terms)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        b, c, h, w = in_shapes[0]
        x = [in_shapes[0]]
        red3, red5 = [(b, self.ch3x3red, h, w)], [(b, self.ch5x5red, h, w)]
        return Inception(
            self._unit(self.ch1x1).build(x),
            nn.Sequential(self._unit(self.ch3x3red).build(x), self._unit(self.ch3x3, 3).build(red3)),
            nn.Sequential(self._unit(self.ch5x5red).build(x),
                          self._unit(self.ch5x5, self.branch3_kernel).build(red5)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), self._unit(self.pool_proj).build(x)),
        )

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        fields = {"ch1x1": 4, "ch3x3red": 4, "ch3x3": 8, "ch5x5red": 2, "ch5x5": 4, "pool_proj": 4}
        return fields, [[(2, 8, 7, 7)], [(1, 8, 9, 6)]]
