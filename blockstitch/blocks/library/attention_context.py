"""Attention from strip-convolution and local-pooled context: CPCA (channel prior convolutional attention), CAA
(PKINet's context anchor attention) and MLCA (mixed local channel attention). Each is written from its paper and
keeps its `b c h w` input's shape; none has a last layer whose zeroing gives the identity (CPCA's would give
zero, the others are sigmoid gates), so for identity init the stitcher wraps them in a zero-gated residual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._attn_base import GateSpec, conv_bn_act

__all__ = ["CPCASpec", "CAASpec", "MLCASpec"]

_STRIPS = (7, 11, 21)
"""CPCA's multi-scale depthwise strip kernels (1×k then k×1), after a 5×5 depthwise conv."""


def _dw(c: int, kh: int, kw: int) -> nn.Conv2d:
    return nn.Conv2d(c, c, (kh, kw), padding=(kh // 2, kw // 2), groups=c)


class ChannelPriorAttention(nn.Module):
    """CPCA: 1×1 conv + GELU → channel prior (CBAM-style channel attention) → multi-scale depthwise strip convs
    → 1×1 conv as a spatial map over the channel-weighted features → 1×1 conv (one 1×1 conv, used three times)."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c, c, 1)
        self.act = nn.GELU()
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, c, 1))
        self.dw5 = _dw(c, 5, 5)
        self.strips = nn.ModuleList(nn.Sequential(_dw(c, 1, k), _dw(c, k, 1)) for k in _STRIPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.proj(x))
        prior = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * prior  # channel prior, b c h w
        base = self.dw5(x)
        context = base + sum(strip(base) for strip in self.strips)
        return self.proj(self.proj(context) * x)


@register_block
class CPCASpec(GateSpec):
    """Channel Prior Convolutional Attention (Huang et al.): channel attention first, then a spatial attention
    from multi-scale depthwise strip convolutions, keeping per-channel spatial maps. Example: ``{kind: cpca}``."""

    kind: Literal["cpca"] = "cpca"
    card = BlockCard(
        "attention",
        paper=Paper("Channel prior convolutional attention for medical image segmentation",
                    "Computers in Biology and Medicine", 2024, "https://arxiv.org/abs/2306.05196"),
        aliases=("CPCA", "CPCABlock", "ChannelPriorConvolutionalAttention"),
        insert_where="in the encoder/decoder blocks of a U-Net; after backbone or neck stages in YOLO forks",
        notes="One 1×1 conv is applied three times (in, spatial map, out), as the paper's figure draws it. "
              "Its output is not the input scaled by a gate, so it is stitched in inside a zero-gated residual.",
    )
    reduction: PositiveInt = Field(4, le=1024)
    """Channel reduction of the channel-prior MLP."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        hidden = max(1, c // self.reduction)
        return 3 * b * h * w * c * c + 4 * b * c * hidden + b * h * w * c * (25 + sum(2 * k for k in _STRIPS))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return ChannelPriorAttention(c, max(1, c // self.reduction))


class ContextAnchorAttention(nn.Module):
    """CAA: 7×7 average pool → 1×1 conv-BN-SiLU → depthwise 1×k → depthwise k×1 → 1×1 conv-BN-SiLU → sigmoid."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(7, 1, 3)
        self.conv1 = conv_bn_act(c, c, 1, act=nn.SiLU())
        self.h_conv, self.v_conv = _dw(c, 1, k), _dw(c, k, 1)
        self.conv2 = conv_bn_act(c, c, 1, act=nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv2(self.v_conv(self.h_conv(self.conv1(self.pool(x)))))
        return x * torch.sigmoid(attn)


@register_block
class CAASpec(GateSpec):
    """Context Anchor Attention (Cai et al., PKINet): long-range context along rows and columns from a pair of
    cheap depthwise strip convolutions, as a sigmoid gate over the input. Example: ``{kind: caa}``."""

    kind: Literal["caa"] = "caa"
    card = BlockCard(
        "attention",
        paper=Paper("Poly Kernel Inception Network for Remote Sensing Detection", "CVPR", 2024,
                    "https://arxiv.org/abs/2403.06258"),
        aliases=("CAA", "ContextAnchorAttention", "CAA_Attention"),
        insert_where="beside the multi-kernel convs of a PKI block; after backbone/neck stages in YOLO forks",
        notes="As a plug-and-play block the gate multiplies the input (PKINet multiplies the PKI branch by it).",
    )
    kernel_size: PositiveInt = Field(11, le=63)
    """Length of the horizontal and vertical strip convs (odd; the paper grows it with depth: 11 + 2·stage)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        return b * h * w * c * (2 * c + 2 * self.kernel_size)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ContextAnchorAttention(in_shapes[0][1], self.kernel_size)


def _eca_kernel(c: int, gamma: int = 2, b: int = 1) -> int:
    t = int(abs(math.log2(c) + b) / gamma)
    return t if t % 2 else t + 1


class MixedLocalChannelAttention(nn.Module):
    """MLCA: a local (L×L pooled) and a global channel attention, each an ECA-style 1-d conv over the channel
    sequence, mixed, then resized to the input and applied as a gate."""

    def __init__(self, c: int, local: int, weight: float) -> None:
        super().__init__()
        self.local, self.weight = local, weight
        k = _eca_kernel(c)
        self.conv_local = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)
        self.conv_global = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.local
        local = F.adaptive_avg_pool2d(x, s)  # b c s s
        glob = local.mean((2, 3)).view(b, 1, c)  # b 1 c
        seq = local.reshape(b, c, s * s).transpose(1, 2).reshape(b, 1, s * s * c)  # position-major sequence
        att_local = self.conv_local(seq).reshape(b, s * s, c).transpose(1, 2).reshape(b, c, s, s).sigmoid()
        att_global = self.conv_global(glob).view(b, c, 1, 1).sigmoid()
        mixed = att_global * (1 - self.weight) + att_local * self.weight  # b c s s
        return x * F.adaptive_avg_pool2d(mixed, (h, w))


@register_block
class MLCASpec(GateSpec):
    """Mixed Local Channel Attention (Wan et al.): channel attention that keeps coarse spatial detail by
    attending over an L×L locally pooled map as well as over the global vector. Example: ``{kind: mlca}``."""

    kind: Literal["mlca"] = "mlca"
    card = BlockCard(
        "attention",
        paper=Paper("Mixed local channel attention for object detection",
                    "Engineering Applications of Artificial Intelligence", 2023,
                    "https://doi.org/10.1016/j.engappai.2023.106442"),
        aliases=("MLCA", "MLCAttention", "MixedLocalChannelAttention"),
        insert_where="after backbone stages or in the neck of YOLO forks (after C2f/C3)",
        notes="The 1-d kernel follows ECA (γ = 2, b = 1) from the channel count.",
    )
    local_size: PositiveInt = Field(5, le=32)
    """Side L of the local pooling grid."""
    local_weight: float = Field(0.5, ge=0.0, le=1.0)
    """Weight of the local attention in the mix (the global one gets 1 − this)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = self.check(in_shapes)[:2]
        return b * c * _eca_kernel(c) * (self.local_size**2 + 1)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return MixedLocalChannelAttention(in_shapes[0][1], self.local_size, self.local_weight)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 32, 8, 8)], [(1, 32, 13, 9)]]
