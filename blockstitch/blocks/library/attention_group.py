"""Grouped attention, where the channels are split into groups that are attended separately: SA-Net's shuffle
attention, SGE (spatial group-wise enhance), EMA (efficient multi-scale attention) and ELA (efficient local
attention). Each is written from its paper and keeps its `b c h w` input's shape; their gates are sigmoids, so for
identity init the stitcher wraps them in a zero-gated residual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from einops import rearrange
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape, paper_names
from ...registry import register_block
from ._attn_base import GateSpec

__all__ = ["ShuffleAttnSpec", "SGESpec", "EMASpec", "ELASpec"]


class ShuffleAttention(nn.Module):
    """SA: per group, half the channels get a channel gate (pooled), half a spatial gate (GroupNorm'd); concat,
    then a channel shuffle so information crosses the groups."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.groups, half = groups, c // (2 * groups)
        self.c_weight, self.c_bias = nn.Parameter(torch.zeros(1, half, 1, 1)), nn.Parameter(torch.ones(1, half, 1, 1))
        self.s_weight, self.s_bias = nn.Parameter(torch.zeros(1, half, 1, 1)), nn.Parameter(torch.ones(1, half, 1, 1))
        self.norm = nn.GroupNorm(half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * self.groups, c // self.groups, h, w)
        xc, xs = x.chunk(2, dim=1)
        xc = xc * torch.sigmoid(self.c_weight * xc.mean((2, 3), keepdim=True) + self.c_bias)
        xs = xs * torch.sigmoid(self.s_weight * self.norm(xs) + self.s_bias)
        out = torch.cat((xc, xs), 1).reshape(b, c, h, w)
        return rearrange(out, "b (g c) h w -> b (c g) h w", g=2)  # channel shuffle with two groups


@register_block
class ShuffleAttnSpec(GateSpec):
    """Shuffle attention (Zhang & Yang, SA-Net): channel and spatial attention on the two halves of each channel
    group, with six parameters per group channel, then a channel shuffle. Example: ``{kind: shuffle_attn}``."""

    kind: Literal["shuffle_attn"] = "shuffle_attn"
    card = BlockCard(
        "attention",
        paper=Paper("SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", "ICASSP", 2021,
                    "https://arxiv.org/abs/2102.00240"),
        aliases=("SA", "ShuffleAttention", "SANet", "sa_layer"),
        channel_rule="multiple_of:channel_multiple",
        insert_where="at the end of each residual branch, before the addition; after C2f/C3 in YOLO forks",
        notes="The channels must divide into 2 × groups (64 groups: multiples of 128).",
    )
    groups: PositiveInt = Field(64, le=1024)
    """Number of channel groups G (64 in the paper)."""

    @property
    def channel_multiple(self) -> int:
        return 2 * self.groups

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0  # pooling, GroupNorm and elementwise gates only

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ShuffleAttention(self.check(in_shapes)[1], self.groups)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"groups": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class SpatialGroupEnhance(nn.Module):
    """SGE: per group, the similarity of each position to the group's pooled vector, normalised over space,
    scaled and shifted per group, as a sigmoid gate."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight, self.bias = nn.Parameter(torch.zeros(1, groups, 1, 1)), nn.Parameter(torch.ones(1, groups, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xg = x.reshape(b * self.groups, c // self.groups, h, w)
        t = (xg * xg.mean((2, 3), keepdim=True)).sum(1, keepdim=True).reshape(b, self.groups, h, w)
        t = (t - t.mean((2, 3), keepdim=True)) / (t.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
        gate = torch.sigmoid(t * self.weight + self.bias).reshape(b * self.groups, 1, h, w)
        return (xg * gate).reshape(b, c, h, w)


@register_block
class SGESpec(GateSpec):
    """Spatial Group-wise Enhance (Li et al.): every semantic group enhances the positions that agree with its
    global descriptor; two parameters per group. Example: ``{kind: sge, groups: 8}``."""

    kind: Literal["sge"] = "sge"
    card = BlockCard(
        "attention",
        paper=Paper("Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional Networks",
                    "arXiv", 2019, "https://arxiv.org/abs/1905.09646"),
        aliases=("SGE", "SpatialGroupEnhance", "SGEModule"),
        channel_rule="multiple_of:groups",
        insert_where="after the last BatchNorm of each bottleneck, before the addition",
        notes="The spatial standard deviation is the biased one plus 1e-5, so 1×1 maps stay finite.",
    )
    groups: PositiveInt = Field(64, le=1024)
    """Number of groups G (64 in the paper)."""

    @property
    def channel_multiple(self) -> int:
        return self.groups

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.check(in_shapes)
        return SpatialGroupEnhance(self.groups)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"groups": 8}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class EfficientMultiScaleAttention(nn.Module):
    """EMA: per group, a 1×1 branch (coordinate-style H and W pooling) and a 3×3 branch; each branch's pooled,
    softmaxed descriptor weights the other's map (cross-spatial learning); the sum gates the group."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.groups, cg = groups, c // groups
        self.conv1x1 = nn.Conv2d(cg, cg, 1)
        self.conv3x3 = nn.Conv2d(cg, cg, 3, padding=1)
        self.norm = nn.GroupNorm(cg, cg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = x.reshape(b * self.groups, c // self.groups, h, w)  # (b g) cg h w
        pooled = torch.cat((g.mean(3, keepdim=True), g.mean(2, keepdim=True).transpose(2, 3)), 2)  # .. (h+w) 1
        xh, xw = self.conv1x1(pooled).split((h, w), 2)
        x1 = self.norm(g * xh.sigmoid() * xw.transpose(2, 3).sigmoid())
        x2 = self.conv3x3(g)
        d1 = x1.mean((2, 3)).softmax(-1).unsqueeze(1)  # (b g) 1 cg
        d2 = x2.mean((2, 3)).softmax(-1).unsqueeze(1)
        weights = d1 @ x2.flatten(2) + d2 @ x1.flatten(2)  # (b g) 1 (h w)
        return (g * weights.reshape(-1, 1, h, w).sigmoid()).reshape(b, c, h, w)


@register_block
class EMASpec(GateSpec):
    """Efficient Multi-Scale Attention (Ouyang et al.): grouped, with parallel 1×1 and 3×3 branches whose
    descriptors attend to each other across space. Example: ``{kind: ema, groups: 8}`` (or, with the name of the
    paper's code, ``{kind: ema, factor: 8}``)."""

    kind: Literal["ema"] = "ema"
    card = BlockCard(
        "attention",
        paper=Paper("Efficient Multi-Scale Attention Module with Cross-Spatial Learning", "ICASSP", 2023,
                    "https://arxiv.org/abs/2305.13563"),
        aliases=("EMA", "EMA_attention", "EfficientMultiScaleAttention"),
        channel_rule="multiple_of:groups",
        insert_where="after backbone stages or after C2f/C3 in YOLO forks; in the residual branch of ResNets",
        notes="`factor` (the name in the paper's code, EMA(channels, factor=32)) is accepted for `groups`.",
    )
    groups: PositiveInt = Field(32, le=1024, validation_alias=paper_names("groups", "factor"))
    """Number of groups (the paper's factor, 32; ``factor:`` is accepted too)."""

    @property
    def channel_multiple(self) -> int:
        return self.groups

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        cg, bg = c // self.groups, b * self.groups
        return bg * cg * cg * (h + w) + bg * h * w * cg * cg * 9 + 2 * bg * cg * h * w

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return EfficientMultiScaleAttention(self.check(in_shapes)[1], self.groups)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"groups": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class EfficientLocalAttention(nn.Module):
    """ELA: strip-pooled H and W descriptors, a shared 1-d conv and GroupNorm, two sigmoid gates."""

    def __init__(self, c: int, k: int, conv_groups: int, norm_groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, k, padding=k // 2, groups=conv_groups, bias=False)
        self.norm = nn.GroupNorm(norm_groups, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ah = torch.sigmoid(self.norm(self.conv(x.mean(3))))  # b c h
        aw = torch.sigmoid(self.norm(self.conv(x.mean(2))))  # b c w
        return x * ah[:, :, :, None] * aw[:, :, None, :]


@register_block
class ELASpec(GateSpec):
    """Efficient Local Attention (Xu & Wan): coordinate attention without the channel reduction: 1-d convs and
    GroupNorm over the H- and W-pooled strips. Example: ``{kind: ela}`` (ELA-B: kernel 7, GN 16)."""

    kind: Literal["ela"] = "ela"
    card = BlockCard(
        "attention",
        paper=Paper("ELA: Efficient Local Attention for Deep Convolutional Neural Networks", "arXiv", 2024,
                    "https://arxiv.org/abs/2403.01123"),
        aliases=("ELA", "EfficientLocalAttention", "ELA_Attention"),
        channel_rule="multiple_of:channel_multiple",
        insert_where="where coordinate attention goes: inverted residuals, after backbone stages, YOLO necks",
        notes="Variants: ELA-T (kernel 5, GN 32), ELA-B (7, 16), ELA-S (5, 16, conv groups c/8), ELA-L (7, 16, c/8); "
              "conv_groups 0 means depthwise.",
    )
    kernel_size: PositiveInt = Field(7, le=31)
    """Kernel of the shared 1-d conv (odd)."""
    conv_groups: int = Field(0, ge=0, le=4096)
    """Groups of the 1-d conv; 0 = one per channel (depthwise)."""
    norm_groups: PositiveInt = Field(16, le=1024)
    """Groups of the GroupNorm."""

    @property
    def channel_multiple(self) -> int:
        return math.lcm(self.norm_groups, self.conv_groups or 1)

    def _groups(self, c: int) -> int:
        return self.conv_groups or c

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        return b * (h + w) * c * (c // self._groups(c)) * self.kernel_size

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check(in_shapes)[1]
        return EfficientLocalAttention(c, self.kernel_size, self._groups(c), self.norm_groups)
