"""Local attention over feature maps: halo attention (timm's HaloAttn), VOLO's outlook attention and
LITv2's HiLo attention — each takes and gives `b c h w`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..ops import attention_macs
from ._mixer_base import KeepShapeSpec, OddKernel

__all__ = ["HaloAttnSpec", "OutlookAttnSpec", "OutlookAttention"]


@register_block
class HaloAttnSpec(KeepShapeSpec):
    """Halo attention (Vaswani et al., HaloNet): blocked local self-attention where each block of queries
    attends to its block plus a halo of neighbours, with relative position logits; timm's HaloAttn inside.
    Example: ``{kind: halo_attn, block_size: 8, halo_size: 3}``."""

    kind: Literal["halo_attn"] = "halo_attn"
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by it."""
    block_size: PositiveInt = Field(8, le=64)
    """Side of a query block; H and W must be multiples of it."""
    halo_size: int = Field(3, ge=0, le=32)
    """Extra rows/columns of keys around each block."""
    qkv_bias: bool = False
    """Bias on the q and kv 1×1 convs."""

    card = BlockCard(
        category="attention",
        paper=Paper("Scaling Local Self-Attention for Parameter Efficient Visual Backbones", "CVPR", 2021,
                    "https://arxiv.org/abs/2103.12731"),
        aliases=("HaloAttention", "HaloAttn", "HaloNet"),
        size_rule="multiple_of:block_size",
        channel_rule="multiple_of:heads",
        insert_where="in place of the 3×3 conv of bottleneck blocks (HaloNet), from stride 8 or 16 on",
        notes="Builds timm.layers.HaloAttn (stride 1, qk_ratio 1). timm asserts both with a bare message; the spec says "
              "which field to change. No residual: the stitcher gates it.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def size_multiple(self) -> int:
        return self.block_size

    def _dims(self, c: int) -> tuple[int, int]:
        """(qk, v) channels per head, as timm derives them."""
        from timm.layers import make_divisible

        return make_divisible(c, divisor=8) // self.heads, c // self.heads

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        dqk, dv = self._dims(c)
        blocks, win = (h // self.block_size) * (w // self.block_size), self.block_size + 2 * self.halo_size
        convs = b * h * w * c * self.heads * (2 * dqk + dv)
        pos = 2 * b * self.heads * blocks * self.block_size**2 * (2 * win - 1) * dqk
        return convs + pos + attention_macs(b * blocks, self.heads, self.block_size**2, win * win, dqk, dv)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        from timm.layers.halo_attn import HaloAttn

        c = self.check_input(in_shapes, sizes=False)[1]
        return HaloAttn(c, c, num_heads=self.heads, block_size=self.block_size, halo_size=self.halo_size,
                        qkv_bias=self.qkv_bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4, "block_size": 4, "halo_size": 1}, [[(2, 16, 8, 8)], [(1, 16, 12, 4)]]


class OutlookAttention(nn.Module):
    """Outlook attention: each position predicts, from its own (pooled) feature, the k²×k² attention among
    the k×k neighbours around it; the weighted neighbourhoods are folded back (overlaps add up)."""

    def __init__(self, c: int, heads: int, kernel: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.heads, self.kernel, self.stride = heads, kernel, stride
        self.scale = (c // heads) ** -0.5
        self.v = nn.Linear(c, c, bias=bias)
        self.attn = nn.Linear(c, kernel**4 * heads)
        self.proj = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hh, ww = x.shape[-2:]
        k, pad = self.kernel, self.kernel // 2
        v = rearrange(self.v(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w")
        v = rearrange(F.unfold(v, k, padding=pad, stride=self.stride), "b (n d kk) l -> b n l kk d",
                      n=self.heads, kk=k * k)
        pooled = F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True) if self.stride > 1 else x
        attn = rearrange(self.attn(rearrange(pooled, "b c h w -> b (h w) c")), "b l (n q kk) -> b n l q kk",
                         n=self.heads, q=k * k)
        out = (attn * self.scale).softmax(dim=-1) @ v  # b n l (k k) d
        out = F.fold(rearrange(out, "b n l kk d -> b (n d kk) l"), (hh, ww), k, padding=pad, stride=self.stride)
        return rearrange(self.proj(rearrange(out, "b c h w -> b h w c")), "b h w c -> b c h w")


@register_block
class OutlookAttnSpec(KeepShapeSpec):
    """Outlook attention (Yuan et al., VOLO): dynamic local aggregation whose weights come from a linear of
    the centre token, no query–key products. Example: ``{kind: outlook_attn, heads: 4}``."""

    kind: Literal["outlook_attn"] = "outlook_attn"
    heads: PositiveInt = Field(4, le=64)
    """Attention heads; the channels must divide by it."""
    kernel: OddKernel = 3
    """Neighbourhood side k (the linear predicts k⁴ weights per head)."""
    stride: Literal[1, 2] = 1
    """Attention computed on a map pooled by this; the output keeps H×W (VOLO: 2)."""
    qkv_bias: bool = False
    """Bias on the value projection."""

    card = BlockCard(
        category="attention",
        paper=Paper("VOLO: Vision Outlooker for Visual Recognition", "TPAMI", 2022, "https://arxiv.org/abs/2106.13112"),
        aliases=("OutlookAttention", "Outlooker", "VOLO"),
        channel_rule="multiple_of:heads",
        insert_where="as the token mixer of early high-resolution stages (Outlooker blocks)",
        notes="Takes b c h w (timm's and fightingcv's take b h w c). Equals timm.models.volo.OutlookAttention at stride 1 and 2 (parity test). No residual.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        k2 = self.kernel**2
        positions = -(-h // self.stride) * -(-w // self.stride)
        return (2 * b * h * w * c * c + b * positions * c * k2 * k2 * self.heads
                + b * self.heads * positions * k2 * k2 * (c // self.heads))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return OutlookAttention(c, self.heads, self.kernel, self.stride, self.qkv_bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"stride": 2}, [[(2, 16, 8, 8)], [(1, 16, 7, 5)]]
