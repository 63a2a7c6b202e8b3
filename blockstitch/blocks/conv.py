"""The conv unit: convolution → norm → activation, the brick of most CNNs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import NonNegativeInt, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..errors import ShapeError
from ..registry import register_block
from .layers import ActName, NormName, get_act, get_norm
from .ops import conv_macs, spatial

__all__ = ["ConvSpec", "ConvNormAct", "resolve_groups"]


def resolve_groups(groups: int | str, in_channels: int, out_channels: int, kind: str) -> int:
    """``"depthwise"`` → ``in_channels``; checks both channel counts divide by the groups."""
    g = in_channels if groups == "depthwise" else int(groups)
    if in_channels % g or out_channels % g:
        raise ShapeError(
            f"'{kind}' with groups={g} needs in and out channels divisible by {g}",
            expected=f"channels multiple of {g}",
            found=f"in_channels={in_channels}, out_channels={out_channels}",
            hint="change groups or out_channels",
        )
    return g


class ConvNormAct(nn.Sequential):
    """``conv`` → ``bn`` (any norm; timm's and torchvision's name) → ``act``, as named children."""

    def __init__(self, conv: nn.Module, norm: nn.Module | None, act: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        if norm is not None:
            self.bn = norm
        if act is not None:
            self.act = act


@register_block
class ConvSpec(BlockSpec):
    """Conv unit: 2-d convolution, then a norm and an activation chosen by name."""

    kind: Literal["conv"] = "conv"
    card = BlockCard("conv", aliases=("Conv", "ConvBNAct", "ConvNormAct"))
    out_channels: PositiveInt
    """Output channels (input channels are inferred)."""
    kernel_size: PositiveInt = 3
    """Square kernel size."""
    stride: PositiveInt = 1
    """Stride (the first block of a `repeat` stack keeps it; the rest use 1)."""
    padding: NonNegativeInt | None = None
    """Zero padding; default `dilation * (kernel_size - 1) // 2`, which keeps the size at stride 1."""
    dilation: PositiveInt = 1
    """Dilation of the kernel."""
    groups: PositiveInt | Literal["depthwise"] = 1
    """Channel groups; `depthwise` means one group per input channel."""
    bias: bool | None = None
    """Conv bias; default: only when there is no norm."""
    norm: NormName = "batchnorm"
    """Norm after the conv: batchnorm, groupnorm, layernorm, instancenorm or none."""
    norm_eps: PositiveFloat = 1e-5
    """Epsilon of the norm."""
    act: ActName = "relu"
    """Activation after the norm (`none` for a linear unit)."""

    channel_fields = ("out_channels",)

    def _pad(self) -> int:
        return self.dilation * (self.kernel_size - 1) // 2 if self.padding is None else self.padding

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        (x,) = in_shapes
        self.expect_rank(in_shapes, 4, "b c h w")
        resolve_groups(self.groups, x[1], self.out_channels, self.kind)
        k, s, p, d = self.kernel_size, self.stride, self._pad(), self.dilation
        oh, ow = spatial(self.kind, x, (k, k), (s, s), (p, p), (d, d))
        return (x[0], self.out_channels, oh, ow)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        g = resolve_groups(self.groups, in_shapes[0][1], self.out_channels, self.kind)
        return conv_macs(self.out_shape(in_shapes), in_shapes[0][1], (self.kernel_size,) * 2, g)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cin = in_shapes[0][1]
        g = resolve_groups(self.groups, cin, self.out_channels, self.kind)
        bias = self.norm == "none" if self.bias is None else self.bias
        conv = nn.Conv2d(cin, self.out_channels, self.kernel_size, self.stride, self._pad(), self.dilation, g, bias)
        if self.norm == "none" and self.act == "none":
            return conv  # a bare conv keeps torchvision's names (`conv1.weight`, not `conv1.conv.weight`)
        norm = None if self.norm == "none" else get_norm(self.norm, self.out_channels, "b c h w", self.norm_eps)
        act = None if self.act == "none" else get_act(self.act, inplace=True)
        return ConvNormAct(conv, norm, act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8, "stride": 2, "groups": 2}, [[(2, 4, 9, 9)], [(1, 4, 16, 12)]]


