"""Downsampling blocks that keep more information than a strided conv: ADown (YOLOv9), Haar wavelet
downsampling (HWD) and the spatial-channel decoupled downsampling of YOLOv10 (SCDown)."""

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
from ._parts import Tally, cna, need_divisible

__all__ = ["ADown", "HaarDown", "haar_dwt", "ADownSpec", "HWDSpec", "SCDownSpec"]


class _DownSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels."""
    act: ActName = "silu"
    """Activation of the convs."""

    channel_fields = ("out_channels",)
    stride_fields = ()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class ADown(nn.Module):
    """2×2 average (stride 1), split the channels: one half through a stride-2 3×3 conv, the other through a
    stride-2 3×3 max pool and a 1×1 conv; concatenated."""

    def __init__(self, cin: int, cout: int, act: str) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = cna(cin // 2, self.c, 3, 2, 1, act=act)
        self.cv2 = cna(cin // 2, self.c, 1, 1, 0, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 2, 1, 0, False, True)
        x1, x2 = x.chunk(2, 1)
        return torch.cat((self.cv1(x1), self.cv2(F.max_pool2d(x2, 3, 2, 1))), 1)


@register_block
class ADownSpec(_DownSpec):
    """ADown (YOLOv9, Wang et al. 2024): average, then half the channels by a strided conv and half by a max
    pool + 1×1 conv; halves the size."""

    kind: Literal["adown"] = "adown"

    card = BlockCard(
        category="down",
        paper=Paper("YOLOv9: Learning What You Want to Learn Using Programmable Gradient Information", "ECCV",
                    2024, "https://arxiv.org/abs/2402.13616"),
        aliases=("ADown",),
        size_rule="min:2", channel_rule="multiple_of:2",
        insert_where="replace a stride-2 Conv between YOLO stages",
        notes="Output size floor(h/2) (the 2×2 stride-1 average first drops one row and column). Input and "
              "output channels must be even (the channels are halved). Equal to ultralytics' ADown parameter "
              "for parameter (tests/test_library_parity.py).")

    def _check(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        need_divisible(self.kind, "in_channels", in_shapes[0][1], 2, in_shapes)
        need_divisible(self.kind, "out_channels", self.out_channels, 2, in_shapes)
        b, c, h, w = in_shapes[0]
        if h < 2 or w < 2:
            raise ShapeError("'adown' needs h, w ≥ 2", expected="h, w ≥ 2", found=f"{h}×{w}", in_shapes=in_shapes)
        return (b, c // 2, h - 1, w - 1)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        b, _, oh, ow = Tally().conv(self._check(in_shapes), 1, 3, 2, 1)
        return (b, self.out_channels, oh, ow)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        half, t = self._check(in_shapes), Tally()
        y = t.conv(half, self.out_channels // 2, 3, 2, 1)
        t.conv((*half[:2], *y[2:]), self.out_channels // 2, 1, 1, 0)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        need_divisible(self.kind, "in_channels", in_shapes[0][1], 2, in_shapes)  # sizes are checked per input
        need_divisible(self.kind, "out_channels", self.out_channels, 2, in_shapes)
        return ADown(in_shapes[0][1], self.out_channels, self.act)


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """One level of the orthonormal 2-d Haar transform: ``b c h w`` → ``b (4 c) ⌈h/2⌉ ⌈w/2⌉`` as the sub-bands
    [LL, LH, HL, HH] one after another along the channels; odd sizes are zero-padded at the bottom/right.

    >>> haar_dwt(torch.ones(1, 1, 3, 4))[0, :, 0, 0].tolist()  # a flat cell: all in LL (2 = 4 × ½)
    [2.0, 0.0, 0.0, 0.0]
    """
    x = F.pad(x, [0, x.shape[-1] % 2, 0, x.shape[-2] % 2])
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]  # top-left, top-right of each 2×2 cell
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]  # bottom-left, bottom-right
    return torch.cat(((a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2), 1)


class HaarDown(nn.Module):
    """Haar wavelet transform (lossless, 4× the channels at half the size), then 1×1 conv-BN-act."""

    def __init__(self, cin: int, cout: int, act: str) -> None:
        super().__init__()
        self.conv_bn_act = cna(4 * cin, cout, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_bn_act(haar_dwt(x))


@register_block
class HWDSpec(_DownSpec):
    """Haar wavelet downsampling (Xu et al., Pattern Recognition 2023): a lossless Haar transform to four
    half-size sub-bands, then a 1×1 conv-BN-ReLU to learn from all of them."""

    kind: Literal["hwd"] = "hwd"
    act: ActName = "relu"
    """Activation after the 1×1 conv (the paper's ReLU)."""

    card = BlockCard(
        category="down",
        paper=Paper("Haar wavelet downsampling: A simple but effective downsampling module for semantic "
                    "segmentation", "Pattern Recognition", 2023, "https://doi.org/10.1016/j.patcog.2023.109819"),
        aliases=("HWD", "HWDownsampling", "Down_wt"),
        insert_where="replace max pooling or a stride-2 conv in an encoder",
        notes="Pure-PyTorch Haar (no pytorch_wavelets). Odd sizes are zero-padded at the bottom/right, so the "
              "output is ⌈h/2⌉×⌈w/2⌉.")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, (h + 1) // 2, (w + 1) // 2)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        t = Tally()
        t.conv((b, 4 * c, (h + 1) // 2, (w + 1) // 2), self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return HaarDown(in_shapes[0][1], self.out_channels, self.act)


class SCDown(nn.Module):
    """Pointwise conv to the output width, then a strided depthwise conv (no activation)."""

    def __init__(self, cin: int, cout: int, k: int, s: int, act: str) -> None:
        super().__init__()
        self.cv1 = cna(cin, cout, 1, act=act)
        self.cv2 = cna(cout, cout, k, s, g=cout, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))


@register_block
class SCDownSpec(_DownSpec):
    """SCDown (YOLOv10, Wang et al. NeurIPS 2024): spatial-channel decoupled downsampling — a 1×1 conv changes
    the channels, a stride-2 depthwise conv halves the size."""

    kind: Literal["scdown"] = "scdown"
    kernel_size: PositiveInt = Field(3, le=15)
    """Kernel of the depthwise conv."""
    stride: PositiveInt = Field(2, le=8)
    """Stride of the depthwise conv."""

    card = BlockCard(
        category="down",
        paper=Paper("YOLOv10: Real-Time End-to-End Object Detection", "NeurIPS", 2024,
                    "https://arxiv.org/abs/2405.14458"),
        aliases=("SCDown",),
        insert_where="replace a stride-2 Conv between YOLO stages",
        notes="Output size ⌊(h − 1)/stride⌋ + 1 for odd kernels. Equal to ultralytics' SCDown parameter for "
              "parameter (tests/test_library_parity.py).")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return Tally().conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t = Tally()
        y = t.conv(in_shapes[0], self.out_channels, 1)
        t.conv(y, self.out_channels, self.kernel_size, self.stride, g=self.out_channels)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SCDown(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.act)
