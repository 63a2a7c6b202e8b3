"""VGG block: n 3×3 conv units, then (optionally) a 2×2 max-pool; also U-Net's double conv (n=2, no pool)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..registry import register_block
from .layers import ActName, NormName, get_act, get_norm
from .ops import conv_macs, spatial

__all__ = ["VGGBlockSpec"]


@register_block
class VGGBlockSpec(BlockSpec):
    """`convs` × (conv k×k → norm → act), then a 2×2 stride-2 max-pool when `pool` is set.

    The module is one flat `nn.Sequential` (conv, [norm], act, …, pool), the order torchvision's VGG uses.
    """

    kind: Literal["vgg_block"] = "vgg_block"
    card = BlockCard(
        "block",
        paper=Paper("Very Deep Convolutional Networks for Large-Scale Image Recognition",
                    "ICLR", 2015, "https://arxiv.org/abs/1409.1556"),
        aliases=("VGGBlock",),
        size_rule="min:2",
        insert_where="stacked (VGG-11/16/19)",
        notes="The size rule is that of the default pool: true (a 2×2 max-pool); with pool: false any size works.",
    )
    out_channels: PositiveInt
    """Width of every conv in the block."""
    convs: PositiveInt = 2
    """Number of conv units."""
    kernel_size: PositiveInt = 3
    """Kernel size (padding keeps the size)."""
    bias: bool = True
    """Conv bias (VGG has it even with batch norm; U-Net's double conv has none)."""
    norm: NormName = "none"
    """Norm after each conv (batchnorm for VGG-BN and U-Net)."""
    act: ActName = "relu"
    """Activation after each conv."""
    pool: bool = True
    """End with a 2×2 stride-2 max-pool."""

    channel_fields = ("out_channels",)

    def _conv_shape(self, x: Shape) -> Shape:
        k, p = self.kernel_size, self.kernel_size // 2
        return (x[0], self.out_channels, *spatial(self.kind, x, (k, k), (1, 1), (p, p)))

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        shape = in_shapes[0]
        for _ in range(self.convs):
            shape = self._conv_shape(shape)
        if self.pool:
            shape = (*shape[:2], *spatial(self.kind, shape, (2, 2), (2, 2), (0, 0)))
        return shape

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        total, shape = 0, in_shapes[0]
        for _ in range(self.convs):
            out = self._conv_shape(shape)
            total += conv_macs(out, shape[1], (self.kernel_size,) * 2)
            shape = out
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        layers: list[nn.Module] = []
        cin = in_shapes[0][1]
        for _ in range(self.convs):
            layers.append(nn.Conv2d(cin, self.out_channels, self.kernel_size, padding=self.kernel_size // 2,
                                    bias=self.bias))
            if self.norm != "none":
                layers.append(get_norm(self.norm, self.out_channels))
            layers.append(get_act(self.act, inplace=True))
            cin = self.out_channels
        if self.pool:
            layers.append(nn.MaxPool2d(2, 2))
        return nn.Sequential(*layers)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8, "norm": "batchnorm"}, [[(2, 3, 8, 8)], [(1, 3, 9, 7)]]
