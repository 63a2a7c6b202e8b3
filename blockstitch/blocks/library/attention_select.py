"""Multi-branch selection and polarized attention: SKNet's selective kernel, EPSANet's pyramid split attention
and polarized self-attention. Each is written from its paper and keeps its
`b c h w` input's shape; none has a zero-able last layer that gives the identity, so for identity init the
stitcher wraps them in a zero-gated residual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._attn_base import GateSpec

__all__ = ["SKSpec", "PyramidSplitSpec", "PolarizedSpec"]


class SelectiveKernel(nn.Module):
    """SK: branches of 3×3 convs with growing dilation (3×3, 'five by five', …), fused by summing, squeezed, and
    selected per channel by a softmax across branches."""

    def __init__(self, c: int, branches: int, groups: int, hidden: int, norm: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=groups, bias=False), nn.BatchNorm2d(c),
                          nn.ReLU()) for d in range(1, branches + 1))
        self.fc = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=not norm), nn.BatchNorm2d(hidden) if norm else
                                nn.Identity(), nn.ReLU())
        self.select = nn.Conv2d(hidden, c * branches, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([conv(x) for conv in self.convs], 1)  # b m c h w
        z = self.fc(feats.sum(1).mean((2, 3), keepdim=True))  # b d 1 1
        weights = self.select(z).view(x.shape[0], len(self.convs), -1, 1, 1).softmax(1)
        return (feats * weights).sum(1)


@register_block
class SKSpec(GateSpec):
    """Selective Kernel unit (Li et al., SKNet): split into kernels of different receptive fields, fuse, and let
    each channel select its kernel by a softmax attention. Example: ``{kind: sk, groups: 4}``."""

    kind: Literal["sk"] = "sk"
    card = BlockCard(
        "conv",
        paper=Paper("Selective Kernel Networks", "CVPR", 2019, "https://arxiv.org/abs/1903.06586"),
        aliases=("SK", "SKConv", "SKAttention", "SKNet", "SKUnit", "SelectiveKernel"),
        channel_rule="multiple_of:groups",
        insert_where="in place of the 3×3 conv of each bottleneck (SKNet); after C2f/C3 in YOLO forks",
        notes="The 5×5 branch is a 3×3 with dilation 2, as in the paper. The BatchNorm after the squeeze FC is "
              "`norm: true`; off by default because it fails at batch 1 in training.",
    )
    branches: PositiveInt = Field(2, le=4)
    """Number of kernels M (dilations 1..M)."""
    groups: PositiveInt = Field(32, le=1024)
    """Groups G of the branch convs (32 in the paper)."""
    reduction: PositiveInt = Field(16, le=1024)
    """Reduction r of the squeeze FC."""
    min_hidden: PositiveInt = Field(32, le=1024)
    """Smallest width L of the squeeze FC (d = max(c / r, L))."""
    norm: bool = False
    """BatchNorm after the squeeze FC (the paper's; fails at batch 1 in training)."""

    @property
    def channel_multiple(self) -> int:
        return self.groups

    def _hidden(self, c: int) -> int:
        return max(c // self.reduction, self.min_hidden)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        d, m = self._hidden(c), self.branches
        return m * b * h * w * c * (c // self.groups) * 9 + b * c * d + b * d * c * m

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check(in_shapes)[1]
        return SelectiveKernel(c, self.branches, self.groups, self._hidden(c), self.norm)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"groups": 4, "min_hidden": 8}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class PyramidSplitAttention(nn.Module):
    """PSA (EPSANet): four convs of growing kernel (and group count) each make a quarter of the output; a shared
    SE weights each quarter; a softmax across the four recalibrates them."""

    def __init__(self, c: int, kernels: Sequence[int], groups: Sequence[int], hidden: int) -> None:
        super().__init__()
        part = c // len(kernels)
        self.convs = nn.ModuleList(nn.Conv2d(c, part, k, padding=k // 2, groups=g, bias=False)
                                   for k, g in zip(kernels, groups))
        self.se = nn.Sequential(nn.Conv2d(part, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, part, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([conv(x) for conv in self.convs], 1)  # b s c/s h w
        weights = torch.stack([self.se(f.mean((2, 3), keepdim=True)) for f in feats.unbind(1)], 1).softmax(1)
        return (feats * weights).flatten(1, 2)


@register_block
class PyramidSplitSpec(GateSpec):
    """Pyramid Split Attention (Zhang et al., EPSANet): multi-scale grouped convs on four channel splits,
    recalibrated by SE weights softmaxed across scales. Example: ``{kind: psa_pyramid}``."""

    kind: Literal["psa_pyramid"] = "psa_pyramid"
    card = BlockCard(
        "attention",
        paper=Paper("EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network",
                    "ACCV", 2022, "https://arxiv.org/abs/2105.14447"),
        aliases=("EPSA", "PSA", "PSAModule", "EPSABlock", "PyramidSplitAttention"),
        channel_rule="multiple_of:channel_multiple",
        insert_where="in place of the 3×3 conv of each bottleneck (EPSANet)",
        notes="Not to be confused with polarized self-attention (`psa_polarized`) or YOLOv10's PSA "
              "(`psa_yolov10`). With the paper's groups (1, 4, 8, 16) the channels must be multiples of 64.",
    )
    kernels: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (3, 5, 7, 9)
    """Kernel of each split's conv (odd)."""
    conv_groups: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (1, 4, 8, 16)
    """Groups of each split's conv."""
    reduction: PositiveInt = Field(16, le=1024)
    """Reduction of the shared SE."""

    @property
    def channel_multiple(self) -> int:
        return len(self.kernels) * math.lcm(*self.conv_groups)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        part = c // 4
        convs = sum(b * h * w * part * (c // g) * k * k for k, g in zip(self.kernels, self.conv_groups))
        return convs + 4 * 2 * b * part * max(1, part // self.reduction)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check(in_shapes)[1]
        return PyramidSplitAttention(c, self.kernels, self.conv_groups, max(1, c // 4 // self.reduction))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"conv_groups": [1, 2, 2, 4], "reduction": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class PolarizedSelfAttention(nn.Module):
    """PSA: a channel-only branch (softmax over space, full channel resolution, LayerNorm) and a spatial-only
    branch (softmax over channels, full spatial resolution), in parallel (summed) or in sequence."""

    def __init__(self, c: int, layout: str) -> None:
        super().__init__()
        half = max(1, c // 2)
        self.layout = layout
        self.ch_v, self.ch_q, self.ch_z = nn.Conv2d(c, half, 1), nn.Conv2d(c, 1, 1), nn.Conv2d(half, c, 1)
        self.ch_norm = nn.LayerNorm([c, 1, 1])
        self.sp_v, self.sp_q = nn.Conv2d(c, half, 1), nn.Conv2d(c, half, 1)

    def channel(self, x: torch.Tensor) -> torch.Tensor:
        v, q = self.ch_v(x).flatten(2), self.ch_q(x).flatten(2).softmax(-1)  # b c/2 n, b 1 n
        z = (v @ q.transpose(1, 2)).unsqueeze(-1)  # b c/2 1 1
        return x * torch.sigmoid(self.ch_norm(self.ch_z(z)))

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        v = self.sp_v(x).flatten(2)  # b c/2 n
        q = self.sp_q(x).mean((2, 3)).softmax(-1).unsqueeze(1)  # b 1 c/2
        return x * torch.sigmoid((q @ v).reshape(x.shape[0], 1, *x.shape[2:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "parallel":
            return self.channel(x) + self.spatial(x)
        return self.spatial(self.channel(x))


@register_block
class PolarizedSpec(GateSpec):
    """Polarized self-attention (Liu et al.): channel-only and spatial-only self-attention that keep high internal
    resolution, for pixel-wise regression. Example: ``{kind: psa_polarized, layout: sequential}``."""

    kind: Literal["psa_polarized"] = "psa_polarized"
    card = BlockCard(
        "attention",
        paper=Paper("Polarized Self-Attention: Towards High-quality Pixel-wise Regression", "arXiv", 2021,
                    "https://arxiv.org/abs/2107.00782"),
        aliases=("PSA", "PolarizedSelfAttention", "ParallelPolarizedSelfAttention",
                 "SequentialPolarizedSelfAttention"),
        insert_where="after the 3×3 conv of each residual block of a pose/segmentation backbone",
        notes="Not EPSANet's pyramid split attention (`psa_pyramid`) nor YOLOv10's PSA (`psa_yolov10`).",
    )
    layout: Literal["parallel", "sequential"] = "parallel"
    """How the channel and spatial branches combine: summed, or channel then spatial."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        n, half = h * w, max(1, c // 2)
        return b * n * c * (half + 1) + b * half * n + b * half * c + 2 * b * n * c * half + b * half * n

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return PolarizedSelfAttention(in_shapes[0][1], self.layout)
