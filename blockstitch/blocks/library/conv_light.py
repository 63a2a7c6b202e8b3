"""Cheap convolutions: depthwise-separable (MobileNet), Ghost (GhostNet), partial (FasterNet), GSConv
(slim-neck) and SPD-Conv (space-to-depth, no stride)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..layers import ActName
from ._parts import SameShapeSpec, Tally, cna

__all__ = ["DSConvSpec", "GhostConvSpec", "PConvSpec", "GSConvSpec", "SPDConvSpec", "GhostConv", "PartialConv"]


class _ConvLikeSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels."""
    kernel_size: PositiveInt = Field(3, le=15)
    """Kernel size (odd keeps the size at stride 1)."""
    stride: PositiveInt = Field(1, le=8)
    """Stride."""

    channel_fields = ("out_channels",)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class _DSConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, s: int, act: str) -> None:
        super().__init__()
        self.dw = cna(cin, cin, k, s, g=cin, act=act)
        self.pw = cna(cin, cout, 1, act=act)


@register_block
class DSConvSpec(_ConvLikeSpec):
    """Depthwise-separable conv (MobileNet, Howard et al. 2017): depthwise k×k conv-BN-act, then pointwise
    1×1 conv-BN-act."""

    kind: Literal["dsconv"] = "dsconv"
    act: ActName = "relu"
    """Activation after each conv."""

    card = BlockCard(
        category="conv",
        paper=Paper("MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", "arXiv",
                    2017, "https://arxiv.org/abs/1704.04861"),
        aliases=("DepthwiseSeparableConv", "DSConv", "DWConv", "SeparableConv2d"),
        insert_where="replace a dense k×k conv-BN-act anywhere")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return Tally().conv(Tally().conv(in_shapes[0], in_shapes[0][1], self.kernel_size, self.stride),
                            self.out_channels, 1)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t = Tally()
        t.conv(t.conv(in_shapes[0], in_shapes[0][1], self.kernel_size, self.stride, g=in_shapes[0][1]),
               self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return _DSConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.act)


class GhostConv(nn.Module):
    """Half the output from a primary conv, the other half from a cheap depthwise conv on it."""

    def __init__(self, cin: int, cout: int, k: int, s: int, cheap_k: int, act: str) -> None:
        super().__init__()
        half = cout // 2
        self.cv1 = cna(cin, half, k, s, act=act)
        self.cv2 = cna(half, half, cheap_k, 1, g=half, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)


def _even_out(kind: str, cout: int) -> int:
    if cout % 2:
        raise ShapeError(f"'{kind}' makes half its output from the other half: out_channels must be even",
                         expected="even out_channels", found=str(cout))
    return cout // 2


@register_block
class GhostConvSpec(_ConvLikeSpec):
    """GhostConv (GhostNet, Han et al., CVPR 2020): a primary conv makes half the channels, a cheap 5×5
    depthwise conv makes "ghost" features from them for the other half."""

    kind: Literal["ghost_conv"] = "ghost_conv"
    kernel_size: PositiveInt = Field(1, le=15)
    """Kernel of the primary conv (Ultralytics' default 1)."""
    cheap_kernel: PositiveInt = Field(5, le=15)
    """Kernel of the cheap depthwise conv."""
    act: ActName = "silu"
    """Activation after both convs."""

    card = BlockCard(
        category="conv",
        paper=Paper("GhostNet: More Features from Cheap Operations", "CVPR", 2020, "https://arxiv.org/abs/1911.11907"),
        aliases=("GhostConv", "GhostModule"),
        insert_where="replace a Conv in YOLO backbones/necks or a 1×1 conv in a bottleneck",
        notes="The ratio-2 Ghost module as YOLO uses it. out_channels must be even. Equal to ultralytics' "
              "GhostConv and, with cheap_kernel=3 and act=relu, to timm's GhostModule parameter for parameter "
              "(tests/test_library_parity.py).")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        _even_out(self.kind, self.out_channels)
        return Tally().conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        half, t = _even_out(self.kind, self.out_channels), Tally()
        t.conv(t.conv(in_shapes[0], half, self.kernel_size, self.stride), half, self.cheap_kernel, g=half)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        _even_out(self.kind, self.out_channels)
        return GhostConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.cheap_kernel,
                         self.act)


class PartialConv(nn.Module):
    """A k×k conv on the first ``cin / n_div`` channels; the other channels pass untouched."""

    def __init__(self, channels: int, n_div: int, k: int) -> None:
        super().__init__()
        self.dim_conv = channels // n_div
        self.partial_conv = nn.Conv2d(self.dim_conv, self.dim_conv, k, 1, k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.split([self.dim_conv, x.shape[1] - self.dim_conv], dim=1)
        return torch.cat((self.partial_conv(x1), x2), 1)


@register_block
class PConvSpec(SameShapeSpec):
    """Partial convolution (FasterNet, Chen et al., CVPR 2023): a regular conv on a quarter of the channels,
    the rest untouched — fewer FLOPs *and* fewer memory accesses than a depthwise conv."""

    kind: Literal["pconv"] = "pconv"
    n_div: PositiveInt = Field(4, le=64)
    """The conv sees in_channels // n_div channels."""
    kernel_size: PositiveInt = Field(3, le=15)
    """Kernel (odd)."""

    card = BlockCard(
        category="conv",
        paper=Paper("Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks", "CVPR", 2023,
                    "https://arxiv.org/abs/2303.03667"),
        aliases=("PConv", "PartialConv", "Partial_conv3", "FasterNet"),
        channel_rule="min:n_div",
        insert_where="replace the depthwise/3×3 conv of a block (FasterNet block, C2f-Faster in YOLO)",
        notes="Equal to timm's fasternet Partial_conv3 (split_cat) parameter for parameter. Identity init sets "
              "the partial conv to a Dirac kernel, so module(x) == x exactly.")

    def _part(self, in_shapes: Sequence[Shape]) -> int:
        self.out_shape(in_shapes)
        c = in_shapes[0][1] // self.n_div
        if c < 1 or self.kernel_size % 2 == 0:
            raise ShapeError(f"'pconv' needs at least n_div={self.n_div} channels and an odd kernel",
                             expected=f"channels ≥ {self.n_div}", found=str(in_shapes[0][1]), in_shapes=in_shapes)
        return c

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        c = self._part(in_shapes)
        b, _, h, w = in_shapes[0]
        t = Tally()
        t.conv((b, c, h, w), c, self.kernel_size)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self._part(in_shapes)
        return PartialConv(in_shapes[0][1], self.n_div, self.kernel_size)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            nn.init.dirac_(module.partial_conv.weight)
        return True


class GSConv(nn.Module):
    """A dense conv makes half the channels, a 5×5 depthwise conv the other half; the halves are interleaved."""

    def __init__(self, cin: int, cout: int, k: int, s: int, act: str) -> None:
        super().__init__()
        half = cout // 2
        self.cv1 = cna(cin, half, k, s, act=act)
        self.cv2 = cna(half, half, 5, 1, g=half, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        y = torch.cat((y, self.cv2(y)), 1)
        b, c, h, w = y.shape
        # shuffle: b (2 half) h w → b (half 2) h w, so dense and depthwise channels alternate
        return y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


@register_block
class GSConvSpec(_ConvLikeSpec):
    """GSConv (slim-neck, Li et al. 2022/2024): dense conv to half the channels, depthwise conv for the other
    half, then a channel shuffle that mixes the two."""

    kind: Literal["gsconv"] = "gsconv"
    kernel_size: PositiveInt = Field(1, le=15)
    """Kernel of the dense conv."""
    act: ActName = "silu"
    """Activation after both convs."""

    card = BlockCard(
        category="conv",
        paper=Paper("Slim-neck by GSConv: a lightweight-design for real-time detector architectures",
                    "Journal of Real-Time Image Processing", 2024, "https://arxiv.org/abs/2206.02424"),
        aliases=("GSConv", "SlimNeck"),
        insert_where="replace the Convs of a YOLO neck (slim-neck with VoV-GSCSP)",
        notes="out_channels must be even. The shuffle interleaves the dense and the depthwise halves.")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        _even_out(self.kind, self.out_channels)
        return Tally().conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        half, t = _even_out(self.kind, self.out_channels), Tally()
        t.conv(t.conv(in_shapes[0], half, self.kernel_size, self.stride), half, 5, g=half)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        _even_out(self.kind, self.out_channels)
        return GSConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.act)


class SPDConv(nn.Module):
    """Space-to-depth (each s×s cell to s² channels, zero-padding odd borders), then a stride-1 conv."""

    def __init__(self, cin: int, cout: int, k: int, scale: int, act: str) -> None:
        super().__init__()
        self.scale = scale
        self.conv = cna(cin * scale * scale, cout, k, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale
        x = F.pad(x, [0, -x.shape[-1] % s, 0, -x.shape[-2] % s])
        b, c, h, w = x.shape
        # b c (h s1) (w s2) → b (s2 s1 c) h w: sub-maps x[::s, ::s], x[1::s, ::s], … stacked on the channels
        x = x.view(b, c, h // s, s, w // s, s).permute(0, 5, 3, 1, 2, 4).reshape(b, s * s * c, h // s, w // s)
        return self.conv(x)


@register_block
class SPDConvSpec(BlockSpec):
    """SPD-Conv (Sunkara & Luo, ECML PKDD 2022): space-to-depth instead of strides or pooling — no pixel is
    dropped — then a non-strided conv; for small objects and low resolution."""

    kind: Literal["spd_conv"] = "spd_conv"
    out_channels: PositiveInt
    """Output channels."""
    kernel_size: PositiveInt = Field(3, le=15)
    """Kernel of the stride-1 conv (odd)."""
    scale: PositiveInt = Field(2, le=8)
    """Downsampling factor (each scale×scale cell becomes scale² channels)."""
    act: ActName = "silu"
    """Activation after the conv."""

    channel_fields = ("out_channels",)

    card = BlockCard(
        category="down",
        paper=Paper("No More Strided Convolutions or Pooling: A New CNN Building Block for Low-Resolution Images "
                    "and Small Objects", "ECML PKDD", 2022, "https://arxiv.org/abs/2208.03641"),
        aliases=("SPDConv", "SPD-Conv", "space_to_depth", "Focus"),
        insert_where="replace every stride-2 conv / pooling layer of a detector backbone",
        notes="Sizes that are not multiples of scale are zero-padded at the bottom/right: output ⌈h/scale⌉. "
              "With kernel_size=1 (scale 2) it is YOLOv5's Focus, equal to ultralytics' Focus parameter for "
              "parameter at even sizes; ultralytics' Focus fails at odd sizes (its four slices differ in size).")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, -(-h // self.scale), -(-w // self.scale))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        s, t = self.scale, Tally()
        t.conv((b, c * s * s, -(-h // s), -(-w // s)), self.out_channels, self.kernel_size)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SPDConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.scale, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 8, 8, 8)], [(1, 8, 13, 9)]]
