"""Spatial and channel–spatial attention maps: SimAM, BAM, triplet attention and GAM. Each is written from its
paper and gives back its `b c h w` input's shape; their gates are sigmoids, so for identity init the stitcher
wraps them in a zero-gated residual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape, paper_names
from ...registry import register_block
from ._attn_base import GateSpec, conv_bn_act as _cba

__all__ = ["SimAMSpec", "BAMSpec", "TripletAttnSpec", "GAMSpec"]


class SimAM(nn.Module):
    """Energy-based, parameter-free 3-d attention: ``x * sigmoid((x − μ)² / (4(σ² + λ)) + 0.5)``."""

    def __init__(self, lam: float) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)  # the paper's n = H·W − 1; at 1×1 its variance would be 0/0
        d = (x - x.mean((2, 3), keepdim=True)).square()
        energy = d / (4 * (d.sum((2, 3), keepdim=True) / n + self.lam)) + 0.5
        return x * torch.sigmoid(energy)


@register_block
class SimAMSpec(GateSpec):
    """SimAM (Yang et al.): a parameter-free attention weighting every neuron by its energy (how distinct it is
    from the other neurons of its channel). Example: ``{kind: simam}``."""

    kind: Literal["simam"] = "simam"
    card = BlockCard(
        "attention",
        paper=Paper("SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks", "ICML",
                    2021, "https://proceedings.mlr.press/v139/yang21o.html"),
        aliases=("SimAM", "simam_module", "SimAMAttention"),
        insert_where="after the second conv of each residual branch, or after backbone/neck stages in YOLO forks",
        notes="No parameters. At 1×1 the paper's H·W − 1 is 0; the divisor is clamped to 1 so the output is finite.",
    )
    lam: PositiveFloat = Field(1e-4, validation_alias=paper_names("lam", "e_lambda"))
    """λ, the regulariser of the energy (1e-4 in the paper; the paper's code calls it ``e_lambda``)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SimAM(self.lam)


class BottleneckAttention(nn.Module):
    """BAM: ``x · (1 + sigmoid(M_c(x) + M_s(x)))``, channel MLP on the pooled vector + dilated spatial branch."""

    def __init__(self, c: int, hidden: int, dilation: int, norm: bool) -> None:
        super().__init__()
        self.channel = nn.Sequential(nn.Linear(c, hidden), nn.BatchNorm1d(hidden) if norm else nn.Identity(),
                                     nn.ReLU(), nn.Linear(hidden, c))
        self.spatial = nn.Sequential(_cba(c, hidden, 1, act=nn.ReLU()), _cba(hidden, hidden, 3, dilation=dilation,
                                     act=nn.ReLU()), _cba(hidden, hidden, 3, dilation=dilation, act=nn.ReLU()),
                                     nn.Conv2d(hidden, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mc = self.channel(x.mean((2, 3)))[:, :, None, None]  # b c 1 1
        return x * (1 + torch.sigmoid(mc + self.spatial(x)))  # b c h w, broadcast with b 1 h w


@register_block
class BAMSpec(GateSpec):
    """Bottleneck Attention Module (Park et al.): channel and spatial attention in parallel, added, a sigmoid,
    applied residually (x + x·M). Example: ``{kind: bam}``."""

    kind: Literal["bam"] = "bam"
    card = BlockCard(
        "attention",
        paper=Paper("BAM: Bottleneck Attention Module", "BMVC", 2018, "https://arxiv.org/abs/1807.06514"),
        aliases=("BAM", "BAMBlock", "BottleneckAttentionModule"),
        insert_where="at each bottleneck of the network: between stages, before the downsampling",
        notes="`norm: true` adds the paper's BatchNorm in the channel MLP; off by default because it fails at "
              "batch 1 in training.",
    )
    reduction: PositiveInt = Field(16, le=1024)
    """Reduction of both branches (r = 16)."""
    dilation: PositiveInt = Field(4, le=16)
    """Dilation of the two 3×3 convs of the spatial branch (d = 4)."""
    norm: bool = False
    """BatchNorm in the channel MLP (the paper's; fails at batch 1 in training)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        r = max(1, c // self.reduction)
        return 2 * b * c * r + b * h * w * (c * r + 2 * r * r * 9 + r)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return BottleneckAttention(c, max(1, c // self.reduction), self.dilation, self.norm)


class _ZPoolGate(nn.Module):
    """Max and mean over dim 1, a k×k conv (2 → 1) with BN, a sigmoid: the gate of one triplet branch."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = _cba(2, 1, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(pooled))


class TripletAttention(nn.Module):
    """Three rotated branches (C–W, C–H, H–W interactions), each a Z-pool gate; their outputs averaged."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.cw, self.hc, self.hw = _ZPoolGate(k), _ZPoolGate(k), _ZPoolGate(k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)  # b h c w: pool over h
        hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # b w h c: pool over w
        return (cw + hc + self.hw(x)) / 3


@register_block
class TripletAttnSpec(GateSpec):
    """Triplet attention (Misra et al.): cross-dimension interaction by rotating the tensor so each pair of
    (C, H, W) is gated from the third, pooled away. Example: ``{kind: triplet_attn}``."""

    kind: Literal["triplet_attn"] = "triplet_attn"
    card = BlockCard(
        "attention",
        paper=Paper("Rotate to Attend: Convolutional Triplet Attention Module", "WACV", 2021,
                    "https://arxiv.org/abs/2010.03045"),
        aliases=("TripletAttention", "Triplet", "TA"),
        insert_where="at the end of each residual branch, before the addition",
    )
    kernel_size: PositiveInt = Field(7, le=31)
    """Kernel of each branch's 2 → 1 conv (odd)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        return b * (c * w + h * c + h * w) * 2 * self.kernel_size**2

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return TripletAttention(self.kernel_size)


class GlobalAttention(nn.Module):
    """GAM: a per-pixel channel MLP gate, then a 7×7 conv–BN–ReLU–7×7 conv–BN spatial gate."""

    def __init__(self, c: int, hidden: int, k: int) -> None:
        super().__init__()
        self.channel = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, c))
        self.spatial = nn.Sequential(_cba(c, hidden, k, act=nn.ReLU()), _cba(hidden, c, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.channel(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))  # MLP over c at each pixel
        return x * torch.sigmoid(self.spatial(x))


@register_block
class GAMSpec(GateSpec):
    """Global Attention Mechanism (Liu et al.): CBAM's order with a 3-d channel gate (an MLP over channels at
    every position, no pooling) and a pooling-free convolutional spatial gate. Example: ``{kind: gam}``."""

    kind: Literal["gam"] = "gam"
    card = BlockCard(
        "attention",
        paper=Paper("Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions",
                    "arXiv", 2021, "https://arxiv.org/abs/2112.05561"),
        aliases=("GAM", "GAM_Attention", "GAMAttention", "GlobalAttentionMechanism"),
        insert_where="after backbone stages (ResNet) or in the neck of YOLO forks",
        notes="Costly: two 7×7 convs at full resolution (about 2·49·c²/r MACs per pixel).",
    )
    reduction: PositiveInt = Field(4, le=1024)
    """Reduction of both sub-modules (r = 4 in the paper)."""
    kernel_size: PositiveInt = Field(7, le=31)
    """Kernel of the spatial convs (odd)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        r = max(1, c // self.reduction)
        return b * h * w * 2 * c * r * (1 + self.kernel_size**2)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return GlobalAttention(c, max(1, c // self.reduction), self.kernel_size)
