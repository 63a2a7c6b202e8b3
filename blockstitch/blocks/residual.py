"""Residual blocks: ResNet's basic block and bottleneck (ResNeXt via groups/width), with an attention slot.

Child names follow torchvision (`conv1`, `bn1`, …, `downsample.0`), so a torchvision or timm ResNet's
state_dict loads strictly; the attention slot is `se`, timm's name for it (SE-ResNet, CBAM-ResNet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..errors import ShapeError
from ..registry import SubBlock, register_block
from .layers import ActName, NormName, get_act, get_norm
from .ops import conv_macs, spatial

__all__ = ["BasicBlockSpec", "BottleneckSpec", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """``act(main(x) + shortcut(x))`` with torchvision's child names; ``depth`` is 2 (basic) or 3 (bottleneck)."""

    def __init__(self, convs: list[nn.Conv2d], norms: list[nn.Module], act: nn.Module,
                 attention: nn.Module | None, downsample: nn.Module | None) -> None:
        super().__init__()
        self.depth = len(convs)
        for i, (conv, norm) in enumerate(zip(convs, norms), start=1):
            setattr(self, f"conv{i}", conv)
            setattr(self, f"bn{i}", norm)
        self.relu = act
        self.se = attention  # None when the block has no attention (no entry in the state_dict)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.depth == 3:
            out = self.bn3(self.conv3(self.relu(out)))
        if self.se is not None:
            out = self.se(out)
        out += identity  # in place, as torchvision does: `out` is this block's own tensor
        return self.relu(out)


class _ResidualSpec(BlockSpec):
    """Fields and logic shared by the basic block and the bottleneck."""

    out_channels: PositiveInt
    """Output channels (for a bottleneck: `expansion` × the inner width, e.g. 256 in ResNet-50's layer1)."""
    stride: PositiveInt = 1
    """Stride of the 3×3 conv (and of the shortcut's 1×1 conv)."""
    norm: NormName = "batchnorm"
    """Norm after each conv."""
    act: ActName = "relu"
    """Activation."""
    attention: SubBlock | None = None
    """Optional attention block applied to the residual branch before the addition, e.g. `{kind: se}`."""

    channel_fields = ("out_channels",)

    def _inner(self, cin: int) -> tuple[list[tuple[int, int, int, int, int]], int]:
        """[(in, out, kernel, stride, groups)] of the main path convs."""
        raise NotImplementedError

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        x = in_shapes[0]
        shape = x
        for (cin, cout, k, s, g), d in zip(self._inner(x[1])[0], self._dilations()):
            if cin % g or cout % g:
                raise ShapeError(f"'{self.kind}': width {cout} not divisible by groups {g}", in_shapes=in_shapes,
                                 hint="choose out_channels/groups/base_width so the inner width divides by groups")
            shape = (x[0], cout, *spatial(self.kind, shape, (k, k), (s, s), (d * (k // 2),) * 2, (d, d)))
        if self.attention is not None:
            inner = self.attention.out_shape([shape])
            if inner != shape:
                raise ShapeError(f"attention '{self.attention.kind}' inside '{self.kind}' changes the shape",
                                 expected=str(shape), found=str(inner), in_shapes=in_shapes)
        return shape

    def _dilations(self) -> tuple[int, ...]:
        """Dilation of each main-path conv (padding follows: a 3×3 conv at dilation d pads d)."""
        return (1, 1, 1)

    def _needs_downsample(self, x: Shape) -> bool:
        return self.stride != 1 or x[1] != self.out_channels

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        total, shape = 0, x
        for (cin, cout, k, s, g), d in zip(self._inner(x[1])[0], self._dilations()):
            shape = (x[0], cout, *spatial(self.kind, shape, (k, k), (s, s), (d * (k // 2),) * 2, (d, d)))
            total += conv_macs(shape, cin, (k, k), g)
        if self._needs_downsample(x):
            total += conv_macs(shape, x[1], (1, 1))
        if self.attention is not None:
            total += self.attention.macs([shape])
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        x = in_shapes[0]
        convs, norms = [], []
        for (cin, cout, k, s, g), d in zip(self._inner(x[1])[0], self._dilations()):
            convs.append(nn.Conv2d(cin, cout, k, s, d * (k // 2), d, groups=g, bias=self.norm == "none"))
            norms.append(get_norm(self.norm, cout))
        attention = None
        if self.attention is not None:
            attention = self.attention.build([self.out_shape(in_shapes)])
        downsample = None
        if self._needs_downsample(x):
            downsample = nn.Sequential(
                nn.Conv2d(x[1], self.out_channels, 1, self.stride, bias=self.norm == "none"),
                get_norm(self.norm, self.out_channels),
            )
        return ResidualBlock(convs, norms, get_act(self.act, inplace=True), attention, downsample)


@register_block
class BasicBlockSpec(_ResidualSpec):
    """ResNet basic block: two 3×3 convs and a shortcut (ResNet-18/34)."""

    kind: Literal["basic"] = "basic"
    card = BlockCard(
        "block",
        paper=Paper("Deep Residual Learning for Image Recognition", "CVPR", 2016, "https://arxiv.org/abs/1512.03385"),
        aliases=("BasicBlock",),
        insert_where="stacked in residual stages (ResNet-18/34)",
    )

    def _inner(self, cin: int) -> tuple[list[tuple[int, int, int, int, int]], int]:
        c = self.out_channels
        return [(cin, c, 3, self.stride, 1), (c, c, 3, 1, 1)], c

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "stride": 2, "attention": {"kind": "se", "reduction": 4}}, [
            [(2, 8, 9, 9)], [(1, 8, 16, 10)]]


@register_block
class BottleneckSpec(_ResidualSpec):
    """ResNet bottleneck: 1×1 reduce, 3×3 (strided, grouped for ResNeXt), 1×1 expand, and a shortcut."""

    kind: Literal["bottleneck"] = "bottleneck"
    card = BlockCard(
        "block",
        paper=Paper("Deep Residual Learning for Image Recognition", "CVPR", 2016, "https://arxiv.org/abs/1512.03385"),
        aliases=("Bottleneck", "BottleneckBlock"),
        insert_where="stacked in residual stages (ResNet-50/101, ResNeXt)",
    )
    expansion: PositiveInt = 4
    """out_channels = expansion × planes."""
    groups: PositiveInt = 1
    """Groups of the 3×3 conv (32 for ResNeXt-50 32×4d)."""
    base_width: PositiveInt = 64
    """Width per group at 64 planes (4 for ResNeXt-50 32×4d); inner width = planes × base_width / 64 × groups."""
    dilation: PositiveInt = 1
    """Dilation of the 3×3 conv: a dilated stage keeps its resolution (torchvision's
    `replace_stride_with_dilation`, DeepLabV3's output stride 8: layer3 at 2, layer4 at 4, with stride 1)."""
    first_dilation: PositiveInt | None = None
    """Dilation of the 3×3 conv of the first block of a `repeat` stack (default `dilation`): torchvision's
    dilated stage starts with the previous stage's dilation (1 for layer3, 2 for layer4)."""

    first_only_fields = ("first_dilation",)

    def _dilations(self) -> tuple[int, ...]:
        return (1, self.first_dilation or self.dilation, 1)

    def _inner(self, cin: int) -> tuple[list[tuple[int, int, int, int, int]], int]:
        if self.out_channels % self.expansion:
            raise ShapeError(f"bottleneck out_channels {self.out_channels} is not a multiple of expansion "
                             f"{self.expansion}", hint="use out_channels = expansion × planes")
        planes = self.out_channels // self.expansion
        width = int(planes * (self.base_width / 64.0)) * self.groups
        return [(cin, width, 1, 1, 1), (width, width, 3, self.stride, self.groups),
                (width, self.out_channels, 1, 1, 1)], width

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 32, "stride": 2, "groups": 2, "base_width": 32}, [
            [(2, 16, 9, 9)], [(1, 16, 14, 8)]]
