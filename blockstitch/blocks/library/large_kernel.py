"""Large-kernel spatial context: LKA (VAN), MSCA (SegNeXt), the LSK block (LSKNet) and focal modulation (FocalNet).

The first three compute a spatial attention map from depthwise (dilated or strip) convolutions and multiply
the input by it; their last 1×1 conv is a natural gate, so identity init sets it to output exactly 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._mixer_base import KeepShapeSpec, OddKernel, gate_to_one

__all__ = ["LKASpec", "LargeKernelAttention", "MSCASpec", "MultiScaleConvAttention", "LSKSpec", "LSKBlock",
           "FocalModulationSpec", "FocalModulation"]


def _dw(c: int, k: tuple[int, int], dilation: int = 1) -> nn.Conv2d:
    """Depthwise conv with 'same' padding for odd kernels."""
    pad = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
    return nn.Conv2d(c, c, k, padding=pad, dilation=dilation, groups=c)


class LargeKernelAttention(nn.Module):
    """LKA: depthwise k×k → depthwise dilated conv → 1×1; the result gates the input (`x * attn`)."""

    def __init__(self, c: int, local_kernel: int, dilated_kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv0 = _dw(c, (local_kernel, local_kernel))
        self.conv_spatial = _dw(c, (dilated_kernel, dilated_kernel), dilation)
        self.conv1 = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


@register_block
class LKASpec(KeepShapeSpec):
    """Large Kernel Attention (VAN): a decomposed 21×21 depthwise attention map multiplied onto the input.

    A 5×5 depthwise conv, a 7×7 depthwise conv with dilation 3 and a 1×1 conv (Guo et al.). Example:
    ``{kind: lka}``."""

    kind: Literal["lka"] = "lka"
    local_kernel: OddKernel = 5
    """Kernel of the plain depthwise conv (2d − 1 in the paper); odd."""
    dilated_kernel: OddKernel = 7
    """Kernel of the dilated depthwise conv (⌈K/d⌉ in the paper); odd."""
    dilation: PositiveInt = Field(3, le=16)
    """Dilation d of the second conv; the receptive field is about dilated_kernel × dilation."""

    card = BlockCard(
        category="attention",
        paper=Paper("Visual Attention Network", "Computational Visual Media", 2023, "https://arxiv.org/abs/2202.09741"),
        aliases=("LKA", "LargeKernelAttention", "VAN attention"),
        insert_where="as the spatial mixer of a stage block, or after a backbone stage (it keeps the shape)",
        notes="The LKA unit itself (u · attn); VAN's wrapper (1×1, GELU, LKA, 1×1, shortcut) is a spec away. "
              "Identity init: the last 1×1 conv outputs 1, so the block passes its input through exactly.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return b * h * w * c * (self.local_kernel**2 + self.dilated_kernel**2 + c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return LargeKernelAttention(in_shapes[0][1], self.local_kernel, self.dilated_kernel, self.dilation)

    def init_identity(self, module: nn.Module) -> bool:
        gate_to_one(module.conv1)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class MultiScaleConvAttention(nn.Module):
    """MSCA: a 5×5 depthwise conv, then strip-conv branches (1×k then k×1) summed with it, a 1×1 mix, a gate."""

    def __init__(self, c: int, local_kernel: int, strips: Sequence[int]) -> None:
        super().__init__()
        self.conv0 = _dw(c, (local_kernel, local_kernel))
        self.branches = nn.ModuleList(nn.Sequential(_dw(c, (1, k)), _dw(c, (k, 1))) for k in strips)
        self.conv3 = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv0(x)
        attn = attn + sum(branch(attn) for branch in self.branches)
        return x * self.conv3(attn)


@register_block
class MSCASpec(KeepShapeSpec):
    """Multi-scale convolutional attention (SegNeXt): depthwise and strip-conv context gating the input.

    Depthwise 5×5 plus 7/11/21-long strip convolutions, summed, mixed by a 1×1 conv and multiplied onto the
    input (Guo et al.). Example: ``{kind: msca}``."""

    kind: Literal["msca"] = "msca"
    local_kernel: OddKernel = 5
    """Kernel of the first depthwise conv; odd."""
    strips: tuple[OddKernel, ...] = Field((7, 11, 21), min_length=1, max_length=6)
    """Lengths of the strip-conv branches (1×k then k×1, depthwise); odd."""

    card = BlockCard(
        category="attention",
        paper=Paper("SegNeXt: Rethinking Convolutional Attention Design for Semantic Segmentation", "NeurIPS", 2022,
                    "https://arxiv.org/abs/2209.08575"),
        aliases=("MSCA", "MSCAAttention", "AttentionModule (SegNeXt)"),
        insert_where="as the spatial mixer of an encoder block, or after a backbone/neck stage",
        notes="The attention unit (u · attn) of SegNeXt's MSCA; identity init sets its 1×1 mix to output 1.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return b * h * w * c * (self.local_kernel**2 + 2 * sum(self.strips) + c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return MultiScaleConvAttention(in_shapes[0][1], self.local_kernel, self.strips)

    def init_identity(self, module: nn.Module) -> bool:
        gate_to_one(module.conv3)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"strips": [7, 11]}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class LSKBlock(nn.Module):
    """LSK: two depthwise large kernels in sequence, each squeezed to c/2, mixed per pixel by a spatial
    selection (sigmoid over a 7×7 conv of channel-mean and channel-max), expanded by a 1×1 gate."""

    def __init__(self, c: int, local_kernel: int, dilated_kernel: int, dilation: int, squeeze_kernel: int) -> None:
        super().__init__()
        half = c // 2
        self.conv0 = _dw(c, (local_kernel, local_kernel))
        self.conv_spatial = _dw(c, (dilated_kernel, dilated_kernel), dilation)
        self.conv1 = nn.Conv2d(c, half, 1)
        self.conv2 = nn.Conv2d(c, half, 1)
        self.conv_squeeze = nn.Conv2d(2, 2, squeeze_kernel, padding=squeeze_kernel // 2)
        self.conv = nn.Conv2d(half, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = self.conv0(x)
        large = self.conv_spatial(small)
        small, large = self.conv1(small), self.conv2(large)
        both = torch.cat([small, large], dim=1)
        pooled = torch.cat([both.mean(dim=1, keepdim=True), both.amax(dim=1, keepdim=True)], dim=1)
        select = self.conv_squeeze(pooled).sigmoid()  # b 2 h w: one weight per kernel and pixel
        attn = small * select[:, :1] + large * select[:, 1:]
        return x * self.conv(attn)


@register_block
class LSKSpec(KeepShapeSpec):
    """Large selective kernel block (LSKNet): two large depthwise kernels selected per pixel, gating the input.

    A 5×5 and a dilated 7×7 depthwise kernel, weighted per pixel by a spatial gate over their channel mean and
    max, turned into an attention map (Li et al.). Example: ``{kind: lsk}``."""

    kind: Literal["lsk"] = "lsk"
    local_kernel: OddKernel = 5
    """Kernel of the first depthwise conv; odd."""
    dilated_kernel: OddKernel = 7
    """Kernel of the second (dilated) depthwise conv; odd."""
    dilation: PositiveInt = Field(3, le=16)
    """Dilation of the second conv."""
    squeeze_kernel: OddKernel = 7
    """Kernel of the selection conv over (mean, max); odd."""

    card = BlockCard(
        category="attention",
        paper=Paper("Large Selective Kernel Network for Remote Sensing Object Detection", "ICCV", 2023,
                    "https://arxiv.org/abs/2303.09030"),
        aliases=("LSK", "LSKblock", "LSKModule"),
        channel_rule="min:2",
        insert_where="as the spatial mixer of a backbone block; YOLO forks put it after C2f/C3 in the neck",
        notes="The LSKblock unit (x · attn); LSKNet's wrapper adds 1×1 projections and a shortcut. Odd channel "
              "counts work (branches use ⌊c/2⌋). Identity init: the last 1×1 conv outputs 1.",
    )

    def min_channels(self) -> int:
        return 2

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        half = c // 2
        return b * h * w * (c * (self.local_kernel**2 + self.dilated_kernel**2) + 3 * c * half
                            + 4 * self.squeeze_kernel**2)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return LSKBlock(in_shapes[0][1], self.local_kernel, self.dilated_kernel, self.dilation, self.squeeze_kernel)

    def init_identity(self, module: nn.Module) -> bool:
        gate_to_one(module.conv)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 17, 13, 9)]]


class FocalModulation(nn.Module):
    """Focal modulation: `f` splits into query, context and L+1 gates; L depthwise conv+GELU levels and a
    global pooled level are gated and summed; `h` turns the sum into a modulator multiplied onto the query."""

    def __init__(self, c: int, window: int, levels: int, factor: int, bias: bool, normalize: bool) -> None:
        super().__init__()
        self.levels, self.normalize = levels, normalize
        self.f = nn.Conv2d(c, 2 * c + levels + 1, 1, bias=bias)
        self.h = nn.Conv2d(c, c, 1, bias=bias)
        self.proj = nn.Conv2d(c, c, 1)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False), nn.GELU())
            for k in (factor * level + window for level in range(levels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        q, ctx, gates = torch.split(self.f(x), [c, c, self.levels + 1], dim=1)
        ctx_all = torch.zeros_like(q)
        for level, layer in enumerate(self.focal_layers):
            ctx = layer(ctx)  # each level widens the previous one's receptive field
            ctx_all = ctx_all + ctx * gates[:, level:level + 1]
        ctx_all = ctx_all + F.gelu(ctx.mean((2, 3), keepdim=True)) * gates[:, self.levels:]
        if self.normalize:
            ctx_all = ctx_all / (self.levels + 1)
        return self.proj(q * self.h(ctx_all))


@register_block
class FocalModulationSpec(KeepShapeSpec):
    """Focal modulation (FocalNet): gated multi-level depthwise context modulating a query projection.

    Hierarchical depthwise context, gated aggregation and an element-wise modulator replace self-attention (Yang
    et al.). Example: ``{kind: focal_modulation}``."""

    kind: Literal["focal_modulation"] = "focal_modulation"
    window: OddKernel = 3
    """Kernel of the first focal level; odd."""
    levels: PositiveInt = Field(2, le=6)
    """Number of focal levels L (depthwise conv + GELU each), plus one global level."""
    factor: int = Field(2, ge=0, le=8, multiple_of=2)
    """Kernel growth per level (kernel = factor · level + window); even, so kernels stay odd."""
    bias: bool = True
    """Biases in the `f` and `h` projections."""
    normalize: bool = False
    """Divide the aggregated context by L + 1 (FocalNet's normalize_modulator)."""

    card = BlockCard(
        category="token_mixer",
        paper=Paper("Focal Modulation Networks", "NeurIPS", 2022, "https://arxiv.org/abs/2203.11926"),
        aliases=("FocalModulation", "FocalNet"),
        insert_where="in place of self-attention in a transformer block (norm → mixer → residual)",
        notes="Matches timm.models.focalnet.FocalModulation (no post-norm) parameter for parameter; no residual "
              "inside, so identity init is left to the stitcher's zero-gated residual.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        kernels = [self.factor * level + self.window for level in range(self.levels)]
        return b * h * w * c * ((2 * c + self.levels + 1) + sum(k * k for k in kernels) + 2 * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return FocalModulation(in_shapes[0][1], self.window, self.levels, self.factor, self.bias, self.normalize)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
