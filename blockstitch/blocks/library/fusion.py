"""Multi-input fusion of feature maps: BiFPN's fast normalised weighted sum, DEA-Net's content-guided
attention fusion (CGAFusion) and ASFF-style adaptive spatial fusion. Nodes take them with `from: [a, b, …]`.

Resize rule (all three): every input is brought to the FIRST input's h × w — by adaptive max pooling when it
is larger on both axes (EfficientDet and ASFF downsample by pooling), else by nearest-neighbour
interpolation (as their upsampling paths do). Channels: see each block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError, fmt_shape
from ...registry import register_block
from ..layers import ActName
from ._parts import Tally, cna

__all__ = ["resize_to", "BiFPNFusionSpec", "CGAFusionSpec", "ASFFFusionSpec"]

_RESIZE = ("inputs resized to the first input's h×w: adaptive max pooling when larger on both axes, "
           "nearest-neighbour interpolation otherwise")


def resize_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``x`` at ``h × w`` by the module's resize rule (pool down, nearest up).

    >>> resize_to(torch.arange(16.0).view(1, 1, 4, 4), 2, 2).flatten().tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    if x.shape[-2:] == (h, w):
        return x
    if x.shape[-2] >= h and x.shape[-1] >= w:
        return F.adaptive_max_pool2d(x, (h, w))
    return F.interpolate(x, size=(h, w), mode="nearest")


class _FusionSpec(BlockSpec):
    in_layouts = ("b c h w",)
    channel_fields = ("out_channels",)
    stride_fields = ()

    out_channels: PositiveInt | None = None
    """Output channels; default the first input's."""

    def _same_channels(self, in_shapes: Sequence[Shape]) -> None:
        self.expect_rank(in_shapes, 4, "b c h w")
        if len({s[1] for s in in_shapes}) != 1 or len({s[0] for s in in_shapes}) != 1:
            raise ShapeError(f"'{self.kind}' needs inputs with the same batch and channels",
                             expected="equal channels", found=", ".join(fmt_shape(s) for s in in_shapes),
                             hint="align the channels with a 1×1 'conv' node on each input first",
                             in_shapes=in_shapes)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        return (b, self.out_channels or c, h, w)


class WeightedFusion(nn.Module):
    """``Σ relu(w_i) · resize(x_i) / (ε + Σ relu(w_j))``, then a depthwise-separable conv → BN → act."""

    def __init__(self, n: int, c: int, cout: int, eps: float, act: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps
        self.dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.pw = cna(c, cout, 1, act=act)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        h, w = xs[0].shape[-2:]
        weights = F.relu(self.weight)
        weights = weights / (weights.sum() + self.eps)
        fused = sum(wi * resize_to(x, h, w) for wi, x in zip(weights, xs))
        return self.pw(self.dw(fused))


@register_block
class BiFPNFusionSpec(_FusionSpec):
    """BiFPN fast normalised fusion (Tan et al., CVPR 2020, EfficientDet): a learned non-negative weight per
    input, normalised by their sum, then a depthwise-separable conv."""

    kind: Literal["bifpn_fusion"] = "bifpn_fusion"
    eps: PositiveFloat = 1e-4
    """ε of the normalisation."""
    act: ActName = "silu"
    """Activation after the fusion conv."""

    arity = None

    card = BlockCard(
        category="fusion",
        paper=Paper("EfficientDet: Scalable and Efficient Object Detection", "CVPR", 2020,
                    "https://arxiv.org/abs/1911.09070"),
        aliases=("BiFPN", "BiFPN_Concat", "BiFPN_Add", "WeightedAdd", "Fusion"),
        insert_where="replace the Concat/Add nodes of a YOLO/FPN neck (from: [a, b] or [a, b, c])",
        notes="Two or more inputs with equal channels; " + _RESIZE + ". Output at the first input's size.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        self._same_channels(in_shapes)
        x, t = in_shapes[0], Tally()
        t.conv(t.conv(x, x[1], 3, g=x[1]), self.out_channels or x[1], 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self._same_channels(in_shapes)
        c = in_shapes[0][1]
        return WeightedFusion(len(in_shapes), c, self.out_channels or c, self.eps, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8), (2, 16, 4, 4), (2, 16, 16, 16)], [(1, 16, 13, 9), (1, 16, 7, 5)]]


class CGAFusion(nn.Module):
    """Content-guided attention: channel and spatial attentions of ``x + y`` refined per channel by a grouped
    7×7 conv over (x, attention) pairs give a gate g; ``out = proj(x + y + g·x + (1 − g)·y)``."""

    def __init__(self, c: int, cout: int, reduction: int) -> None:
        super().__init__()
        hidden = max(c // reduction, 1)
        self.ca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, hidden, 1), nn.ReLU(),
                                nn.Conv2d(hidden, c, 1))
        self.sa = nn.Conv2d(2, 1, 7, 1, 3, padding_mode="reflect")
        self.pa = nn.Conv2d(2 * c, c, 7, 1, 3, padding_mode="reflect", groups=c)
        self.proj = nn.Conv2d(c, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = resize_to(y, *x.shape[-2:])
        initial = x + y
        spatial = self.sa(torch.cat((initial.mean(1, keepdim=True), initial.amax(1, keepdim=True)), 1))
        coarse = self.ca(initial) + spatial  # b c h w, by broadcasting
        # b c h w, b c h w → b (c 2) h w: each channel next to its attention, for the grouped 7×7 conv
        pairs = torch.stack((initial, coarse), dim=2).flatten(1, 2)
        gate = torch.sigmoid(self.pa(pairs))
        return self.proj(initial + gate * x + (1 - gate) * y)


@register_block
class CGAFusionSpec(_FusionSpec):
    """CGAFusion (Chen et al., IEEE TIP 2024, DEA-Net): content-guided attention mixes two feature maps with a
    channel-specific spatial gate learned from both."""

    kind: Literal["cga_fusion"] = "cga_fusion"
    reduction: PositiveInt = Field(8, le=64)
    """Channel reduction of the channel attention."""

    arity = 2

    card = BlockCard(
        category="fusion",
        paper=Paper("DEA-Net: Single image dehazing based on detail-enhanced convolution and content-guided "
                    "attention", "IEEE Transactions on Image Processing", 2024, "https://arxiv.org/abs/2301.04805"),
        aliases=("CGAFusion", "CGA", "ContentGuidedAttention"),
        size_rule="min:4",
        insert_where="U-Net skip joins (encoder feature, decoder feature) or a YOLO neck's Concat of two maps",
        notes="Two inputs with equal channels; the second is resized to the first's h×w (pool down, nearest "
              "up). Reflect-padded 7×7 convs as in the paper, so h, w ≥ 4. The pixel attention's grouped 7×7 conv "
              "sees each channel of x + y next to its coarse attention, as in the paper.")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self._same_channels(in_shapes)
        if min(in_shapes[0][2:]) < 4:
            raise ShapeError("'cga_fusion' pads its 7×7 convs by reflection: h, w ≥ 4", expected="h, w ≥ 4",
                             found=fmt_shape(in_shapes[0]), in_shapes=in_shapes)
        return super().out_shape(in_shapes)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        self._same_channels(in_shapes)
        b, c, h, w = x = in_shapes[0]
        hidden, t = max(c // self.reduction, 1), Tally()
        t.conv((b, c, 1, 1), hidden, 1)
        t.conv((b, hidden, 1, 1), c, 1)
        t.conv((b, 2, h, w), 1, 7)
        t.conv((b, 2 * c, h, w), c, 7, g=c)
        t.conv(x, self.out_channels or c, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self._same_channels(in_shapes)
        c = in_shapes[0][1]
        return CGAFusion(c, self.out_channels or c, self.reduction)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8), (2, 16, 4, 4)], [(1, 16, 13, 9), (1, 16, 13, 9)]]


class AdaptiveSpatialFusion(nn.Module):
    """Align channels (1×1 conv-BN-act where they differ), resize, per-pixel softmax weights over the inputs
    from compressed features, weighted sum, then a 3×3 conv-BN-act."""

    def __init__(self, channels: Sequence[int], cout: int, compress: int, act: str) -> None:
        super().__init__()
        c = channels[0]
        self.align = nn.ModuleList(nn.Identity() if ci == c else cna(ci, c, 1, act=act) for ci in channels)
        self.weight_convs = nn.ModuleList(cna(c, compress, 1, act=act) for _ in channels)
        self.weight_levels = nn.Conv2d(compress * len(channels), len(channels), 1)
        self.out = cna(c, cout, 3, act=act)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        h, w = xs[0].shape[-2:]
        feats = [resize_to(align(x), h, w) for align, x in zip(self.align, xs)]
        logits = self.weight_levels(torch.cat([conv(f) for conv, f in zip(self.weight_convs, feats)], 1))
        weights = logits.softmax(dim=1)  # b n h w: at each pixel, how much of each input
        return self.out(sum(weights[:, i:i + 1] * f for i, f in enumerate(feats)))


@register_block
class ASFFFusionSpec(_FusionSpec):
    """ASFF-style adaptive spatial fusion (Liu et al. 2019): per-pixel softmax weights decide, at every
    location, how much each input contributes."""

    kind: Literal["asff_fusion"] = "asff_fusion"
    compress: PositiveInt = Field(8, le=64)
    """Width of the compressed features the weights are computed from."""
    act: ActName = "silu"
    """Activation of the convs."""

    arity = None

    card = BlockCard(
        category="fusion",
        paper=Paper("Learning Spatial Fusion for Single-Shot Object Detection", "arXiv", 2019,
                    "https://arxiv.org/abs/1911.09516"),
        aliases=("ASFF", "ASFFV5", "AdaptiveSpatialFeatureFusion"),
        insert_where="before each detection head, fusing the pyramid levels (from: [p3, p4, p5])",
        notes="Two or more inputs of any channels: each is aligned to the first's channels by a 1×1 conv-BN-act "
              "at its own size, then " + _RESIZE + ". A general block, not the paper's fixed 3-level head "
              "(which uses strided convs to downsample).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = x = in_shapes[0]
        t = Tally()
        for s in in_shapes:
            if s[1] != c:
                t.conv(s, c, 1)
            t.conv(x, self.compress, 1)
        t.conv((b, self.compress * len(in_shapes), h, w), len(in_shapes), 1)
        t.conv(x, self.out_channels or c, 3)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.expect_rank(in_shapes, 4, "b c h w")
        return AdaptiveSpatialFusion([s[1] for s in in_shapes], self.out_channels or in_shapes[0][1],
                                     self.compress, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8), (2, 32, 4, 4), (2, 8, 16, 16)], [(1, 16, 13, 9), (1, 24, 7, 5)]]
