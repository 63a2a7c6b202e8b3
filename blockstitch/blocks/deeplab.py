"""DeepLabV3: atrous spatial pyramid pooling (ASPP), its segmentation head, the FCN auxiliary head, and a
resize to another tensor's size (logits back to the input's h × w).

Children are named and ordered as torchvision's (`convs.0` … `convs.4`, `project`; the head is a Sequential
`0` ASPP, `1`–`3` conv-BN-ReLU, `4` the classifier conv), so torchvision's DeepLabV3 loads by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..errors import ShapeError
from ..registry import register_block
from .ops import conv_macs

__all__ = ["ASPPSpec", "ASPP", "DeepLabHeadSpec", "FCNHeadSpec", "ResizeAsSpec"]

_PAPER = Paper("Rethinking Atrous Convolution for Semantic Image Segmentation", "arXiv", 2017,
               "https://arxiv.org/abs/1706.05587")


def _cbr(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU()]


class _ImagePool(nn.Sequential):
    """Global average → 1×1 conv-BN-ReLU → bilinear back to the input's h × w (ASPP's image-level branch).

    A batch of one pooled vector has no batch statistics: training at batch 1, the BN here normalises with its
    running statistics (and leaves them as they are), where torchvision's ASPP raises; otherwise it is
    torchvision's branch exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pool, conv, norm, act = self
        y = conv(pool(x))
        if self.training and y.shape[0] == 1:
            y = F.batch_norm(y, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)
        else:
            y = norm(y)
        return F.interpolate(act(y), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Parallel 1×1, atrous 3×3 (one per rate) and image-pool branches, concatenated, then ``project``."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int], dropout: float) -> None:
        super().__init__()
        branches = [nn.Sequential(*_cbr(cin, cout))]
        branches += [nn.Sequential(*_cbr(cin, cout, 3, r)) for r in rates]
        branches.append(_ImagePool(nn.AdaptiveAvgPool2d(1), *_cbr(cin, cout)))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(*_cbr(len(branches) * cout, cout), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


@register_block
class ASPPSpec(BlockSpec):
    """ASPP (DeepLabV3): 1×1 conv, one 3×3 conv per atrous rate, global image pooling; concat → 1×1 project."""

    kind: Literal["aspp"] = "aspp"
    card = BlockCard("neck", paper=_PAPER, aliases=("ASPP", "AtrousSpatialPyramidPooling"),
                     insert_where="on the last backbone feature map of a segmentation network (output stride 8 "
                                  "or 16)",
                     notes="training at batch 1, the image-pool branch's BN uses its running statistics "
                           "(torchvision's ASPP raises there)")
    out_channels: PositiveInt = 256
    """Channels of every branch and of the projection."""
    rates: list[PositiveInt] = Field(default_factory=lambda: [12, 24, 36], min_length=1, max_length=8)
    """Dilation rates of the 3×3 branches ([12, 24, 36] at output stride 8; [6, 12, 18] at 16)."""
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    """Dropout after the projection (training only)."""

    channel_fields = ("out_channels",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        out = (b, self.out_channels, h, w)
        branches = conv_macs(out, c, (1, 1)) + len(self.rates) * conv_macs(out, c, (3, 3))
        pool = conv_macs((b, self.out_channels, 1, 1), c, (1, 1))
        return branches + pool + conv_macs(out, (len(self.rates) + 2) * self.out_channels, (1, 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ASPP(in_shapes[0][1], self.out_channels, self.rates, self.dropout)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8, "rates": [1, 2]}, [[(2, 6, 5, 5)], [(2, 6, 4, 7)]]


@register_block
class DeepLabHeadSpec(BlockSpec):
    """DeepLabV3 head: ASPP → 3×3 conv-BN-ReLU → 1×1 conv to class logits (at the feature map's size)."""

    kind: Literal["deeplab_head"] = "deeplab_head"
    card = BlockCard("head", paper=_PAPER, aliases=("DeepLabHead",),
                     insert_where="on a dilated backbone's last stage; follow with `resize_as` the input",
                     notes="its ASPP trains at batch 1 with running statistics in the image-pool branch")
    num_classes: PositiveInt
    """Number of classes (21 for Pascal VOC)."""
    channels: PositiveInt = 256
    """Width of the ASPP and of the 3×3 conv."""
    rates: list[PositiveInt] = Field(default_factory=lambda: [12, 24, 36], min_length=1, max_length=8)
    """ASPP atrous rates."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.num_classes, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, _, h, w = in_shapes[0]
        aspp = ASPPSpec(out_channels=self.channels, rates=self.rates).macs(in_shapes)
        mid = (b, self.channels, h, w)
        return aspp + conv_macs(mid, self.channels, (3, 3)) + conv_macs((b, self.num_classes, h, w), self.channels,
                                                                        (1, 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.channels
        return nn.Sequential(ASPP(in_shapes[0][1], c, self.rates, 0.5), *_cbr(c, c, 3),
                             nn.Conv2d(c, self.num_classes, 1))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"num_classes": 3, "channels": 8, "rates": [2]}, [[(2, 6, 5, 5)], [(2, 6, 3, 6)]]


@register_block
class FCNHeadSpec(BlockSpec):
    """FCN head (DeepLabV3's auxiliary head): 3×3 conv-BN-ReLU to a quarter of the channels, dropout, 1×1 conv."""

    kind: Literal["fcn_head"] = "fcn_head"
    card = BlockCard("head", paper=Paper("Fully Convolutional Networks for Semantic Segmentation", "CVPR", 2015,
                                         "https://arxiv.org/abs/1411.4038"),
                     aliases=("FCNHead",), channel_rule="min:4",
                     insert_where="on an intermediate stage as an auxiliary loss head")
    num_classes: PositiveInt
    """Number of classes."""
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    """Dropout before the classifier conv (training only)."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        if c < 4:
            raise ShapeError("'fcn_head' narrows to a quarter of its input channels", expected="≥ 4 channels",
                             found=str(c), in_shapes=in_shapes)
        return (b, self.num_classes, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return conv_macs((b, c // 4, h, w), c, (3, 3)) + conv_macs((b, self.num_classes, h, w), c // 4, (1, 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return nn.Sequential(*_cbr(c, c // 4, 3), nn.Dropout(self.dropout), nn.Conv2d(c // 4, self.num_classes, 1))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"num_classes": 3}, [[(2, 8, 5, 5)], [(1, 8, 3, 6)]]


class ResizeAs(nn.Module):
    """``interpolate(x, size=like.shape[-2:])`` — bilinear, align_corners=False unless said otherwise."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        align = False if self.mode in ("bilinear", "bicubic") else None
        return F.interpolate(x, size=like.shape[-2:], mode=self.mode, align_corners=align)


@register_block
class ResizeAsSpec(BlockSpec):
    """Resize the first input to the h × w of the second (`from: [logits, input]` → full-size logits)."""

    kind: Literal["resize_as"] = "resize_as"
    card = BlockCard("up", aliases=("F.interpolate(size=...)", "UpsampleLike"),
                     insert_where="after a segmentation head, with the network input as the second input")
    mode: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    """Interpolation mode."""

    arity = 2
    size_only_inputs = (1,)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        (b, c, _, _), like = in_shapes
        return (b, c, like[2], like[3])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ResizeAs(self.mode)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 3, 4, 4), (2, 5, 9, 9)], [(1, 3, 5, 2), (1, 1, 7, 8)]]
