"""Learned upsampling: DySample (point sampling at predicted offsets) and CARAFE (content-aware reassembly
with predicted kernels), both in pure PyTorch (``grid_sample``, ``unfold``, ``einsum``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...registry import register_block
from ._parts import Tally, need_divisible

__all__ = ["DySample", "CARAFE", "DySampleSpec", "CARAFESpec"]


class _UpSpec(BlockSpec):
    scale: PositiveInt = Field(2, ge=2, le=8)
    """Upsampling factor (output is scale·h × scale·w)."""

    stride_fields = ()

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        return (b, c, h * self.scale, w * self.scale)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class DySample(nn.Module):
    """Offsets from a 1×1 conv (× 0.25, or × a learned sigmoid scope), pixel-shuffled to the output grid and
    added to the bilinear sampling positions; ``grid_sample`` reads the input there, per channel group."""

    def __init__(self, c: int, scale: int, groups: int, dynamic_scope: bool) -> None:
        super().__init__()
        self.scale, self.groups = scale, groups
        out = 2 * groups * scale * scale
        self.offset = nn.Conv2d(c, out, 1)
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        self.scope = nn.Conv2d(c, out, 1) if dynamic_scope else None
        if self.scope is not None:
            nn.init.zeros_(self.scope.weight)
            nn.init.zeros_(self.scope.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s, g = self.scale, self.groups
        factor = 0.25 if self.scope is None else torch.sigmoid(self.scope(x)) * 0.5
        offset = F.pixel_shuffle(self.offset(x) * factor, s)  # b (g 2) (h s) (w s), in input pixels
        offset = offset.view(b, g, 2, s * h, s * w).permute(0, 1, 3, 4, 2).reshape(b * g, s * h, s * w, 2)
        # where bilinear upsampling (align_corners=False) reads each output pixel, in input pixel units
        ys = (torch.arange(s * h, device=x.device, dtype=x.dtype) + 0.5) / s - 0.5
        xs = (torch.arange(s * w, device=x.device, dtype=x.dtype) + 0.5) / s - 0.5
        base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (s h) (s w) 2, as (x, y)
        pos = base + offset
        norm = torch.tensor([w, h], device=x.device, dtype=x.dtype)
        grid = (2 * pos + 1) / norm - 1  # pixel index → [-1, 1] for align_corners=False
        out = F.grid_sample(x.reshape(b * g, c // g, h, w), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        return out.view(b, c, s * h, s * w)


@register_block
class DySampleSpec(_UpSpec):
    """DySample (Liu et al., ICCV 2023): upsampling by learning where to sample — a 1×1 conv predicts offsets
    around the bilinear positions, and the input is point-sampled there; light and dynamic."""

    kind: Literal["dysample"] = "dysample"
    groups: PositiveInt = Field(4, le=64)
    """Channel groups, each with its own offsets."""
    dynamic_scope: bool = False
    """DySample+ : a learned sigmoid scope (× 0.5) on the offsets instead of the static 0.25."""

    card = BlockCard(
        category="up",
        paper=Paper("Learning to Upsample by Learning to Sample", "ICCV", 2023, "https://arxiv.org/abs/2308.15085"),
        aliases=("DySample", "DySample_UP"),
        channel_rule="multiple_of:groups",
        insert_where="replace nn.Upsample in FPN/PAN necks (YOLO layers 10 and 13) or a decoder",
        notes="The 'LP' style (linear offsets, then pixel shuffle). At zero offsets it is bilinear upsampling "
              "(align_corners=False), border padding. MACs count the offset convs; grid_sample counts zero.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        need_divisible(self.kind, "channels", x[1], self.groups, in_shapes)
        t = Tally()
        for _ in range(2 if self.dynamic_scope else 1):
            t.conv(x, 2 * self.groups * self.scale ** 2, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        need_divisible(self.kind, "channels", in_shapes[0][1], self.groups, in_shapes)
        return DySample(in_shapes[0][1], self.scale, self.groups, self.dynamic_scope)


class CARAFE(nn.Module):
    """Compress channels (1×1), encode a k_up² kernel per output pixel (k_enc×k_enc conv, pixel shuffle,
    softmax), and reassemble each output pixel from the k_up×k_up neighbourhood of its source pixel."""

    def __init__(self, c: int, scale: int, k_up: int, k_enc: int, compressed: int) -> None:
        super().__init__()
        self.scale, self.k_up = scale, k_up
        self.comp = nn.Conv2d(c, compressed, 1)
        self.enc = nn.Conv2d(compressed, scale * scale * k_up * k_up, k_enc, 1, k_enc // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s, k = self.scale, self.k_up
        kernels = F.pixel_shuffle(self.enc(self.comp(x)), s).softmax(dim=1)  # b k² (h s) (w s)
        kernels = kernels.view(b, k * k, h, s, w, s)
        patches = F.unfold(x, k, padding=k // 2).view(b, c, k * k, h, w)  # each pixel's k×k neighbourhood
        out = torch.einsum("bckhw,bkhxwy->bchxwy", patches, kernels)  # weighted sum over the neighbourhood
        return out.reshape(b, c, h * s, w * s)


@register_block
class CARAFESpec(_UpSpec):
    """CARAFE (Wang et al., ICCV 2019): content-aware reassembly of features — a predicted, softmax-normalised
    k_up×k_up kernel for each output pixel reassembles its source neighbourhood."""

    kind: Literal["carafe"] = "carafe"
    up_kernel: Literal[3, 5, 7] = 5
    """Reassembly kernel k_up."""
    encoder_kernel: Literal[1, 3, 5] = 3
    """Kernel of the content encoder."""
    compressed_channels: PositiveInt = Field(64, le=1024)
    """Width of the channel compressor."""

    card = BlockCard(
        category="up",
        paper=Paper("CARAFE: Content-Aware ReAssembly of FEatures", "ICCV", 2019, "https://arxiv.org/abs/1905.02188"),
        aliases=("CARAFE", "CARAFE_UP"),
        insert_where="replace nn.Upsample in FPN/PAN necks or a segmentation decoder",
        notes="Pure PyTorch (unfold + einsum), no CUDA extension: exact, but it materialises k_up² copies of "
              "the input (memory ×25 at k_up=5). The reassembly is counted as the matmul it is.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = x = in_shapes[0]
        k, s, t = self.up_kernel, self.scale, Tally()
        y = t.conv(x, self.compressed_channels, 1)
        t.conv(y, s * s * k * k, self.encoder_kernel)
        t.matmul(b * h * w, c, k * k, s * s)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return CARAFE(in_shapes[0][1], self.scale, self.up_kernel, self.encoder_kernel, self.compressed_channels)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"compressed_channels": 8}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
