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

__all__ = ["HaloAttnSpec", "OutlookAttnSpec", "OutlookAttention", "HiLoSpec", "HiLoAttention"]


@register_block
class HaloAttnSpec(KeepShapeSpec):
    """Halo attention (HaloNet): blocked local self-attention over each block plus a halo; timm's HaloAttn.

    Relative position logits inside each neighbourhood (Vaswani et al.). Example:
    ``{kind: halo_attn, block_size: 8, halo_size: 3}``."""

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
        notes="Builds timm.layers.HaloAttn (stride 1, qk_ratio 1). timm asserts sizes with a bare message; the "
              "spec's error names the field to change. No residual: the stitcher gates it.",
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
    """Outlook attention (VOLO): each position's linear predicts the attention among its k×k neighbours.

    Dynamic local aggregation with no query–key products (Yuan et al.). Example:
    ``{kind: outlook_attn, heads: 4}``."""

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
        notes="Takes b c h w (timm's and fightingcv's take b h w c). Equals timm.models.volo.OutlookAttention "
              "at stride 1 and 2 (parity test). No residual.",
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


class HiLoAttention(nn.Module):
    """HiLo: the heads are split. Hi-Fi heads attend inside non-overlapping w×w windows (local detail); Lo-Fi
    heads let every pixel attend to the map average-pooled by w (global context). Outputs are concatenated."""

    def __init__(self, c: int, heads: int, alpha: float, window: int, bias: bool) -> None:
        super().__init__()
        d = c // heads
        lo = heads if window == 1 else int(heads * alpha)  # a 1×1 window is plain global attention
        self.window, self.d, self.scale, self.lo, self.hi = window, d, d**-0.5, lo, heads - lo
        if self.hi:
            self.h_qkv = nn.Linear(c, 3 * self.hi * d, bias=bias)
            self.h_proj = nn.Linear(self.hi * d, self.hi * d)
        if self.lo:
            self.l_q = nn.Linear(c, lo * d, bias=bias)
            self.l_kv = nn.Linear(c, 2 * lo * d, bias=bias)
            self.l_proj = nn.Linear(lo * d, lo * d)

    def hifi(self, x: torch.Tensor) -> torch.Tensor:
        """Window attention on `b h w c`; a ragged edge is padded and its padded keys masked out."""
        h, w, s = x.shape[1], x.shape[2], self.window
        ph, pw = -h % s, -w % s
        qkv = self.h_qkv(F.pad(x, (0, 0, 0, pw, 0, ph)))
        q, k, v = rearrange(qkv, "b (gy sy) (gx sx) (three n d) -> three b (gy gx) n (sy sx) d", sy=s, sx=s,
                            three=3, n=self.hi)
        attn = (q @ k.transpose(-1, -2)) * self.scale  # b windows n t t
        if ph or pw:
            real = F.pad(torch.ones(h, w, dtype=torch.bool, device=x.device), (0, pw, 0, ph))
            real = rearrange(real, "(gy sy) (gx sx) -> (gy gx) (sy sx)", sy=s, sx=s)
            attn = attn.masked_fill(~real[None, :, None, None, :], float("-inf"))
        out = rearrange(attn.softmax(dim=-1) @ v, "b (gy gx) n (sy sx) d -> b (gy sy) (gx sx) (n d)",
                        gy=(h + ph) // s, sy=s, sx=s)
        return self.h_proj(out[:, :h, :w])

    def lofi(self, x: torch.Tensor) -> torch.Tensor:
        """Every pixel's query against keys/values of the map average-pooled by the window (ceil at the edge)."""
        h = x.shape[1]
        q = rearrange(self.l_q(x), "b h w (n d) -> b n (h w) d", n=self.lo)
        pooled = x if self.window == 1 else rearrange(
            F.avg_pool2d(rearrange(x, "b h w c -> b c h w"), self.window, ceil_mode=True), "b c h w -> b h w c")
        k, v = rearrange(self.l_kv(pooled), "b h w (two n d) -> two b n (h w) d", two=2, n=self.lo)
        out = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1) @ v
        return self.l_proj(rearrange(out, "b n (h w) d -> b h w (n d)", h=h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c h w -> b h w c")
        parts = ([self.hifi(x)] if self.hi else []) + ([self.lofi(x)] if self.lo else [])
        return rearrange(torch.cat(parts, dim=-1), "b h w c -> b c h w")


@register_block
class HiLoSpec(KeepShapeSpec):
    """HiLo attention (LITv2): windowed high-frequency heads and pooled global low-frequency heads.

    Hi-Fi heads attend inside small windows, Lo-Fi heads to the map average-pooled by the window (Pan et al.).
    Example: ``{kind: hilo, heads: 8, alpha: 0.5}``."""

    kind: Literal["hilo"] = "hilo"
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by it."""
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    """Share of heads that are Lo-Fi (global, pooled keys); the rest are Hi-Fi (windowed)."""
    window: PositiveInt = Field(2, le=32)
    """Hi-Fi window side and Lo-Fi pooling factor (1: all heads global)."""
    qkv_bias: bool = False
    """Bias on the q/k/v projections."""

    card = BlockCard(
        category="attention",
        paper=Paper("Fast Vision Transformers with HiLo Attention", "NeurIPS", 2022,
                    "https://arxiv.org/abs/2205.13213"),
        aliases=("HiLo", "LITv2 attention"),
        channel_rule="multiple_of:heads",
        insert_where="in place of self-attention in the later stages of a hierarchical backbone",
        notes="Any H×W: at multiples of the window it is the paper's HiLo; otherwise Hi-Fi windows at the ragged "
              "edge are zero-padded with the padded keys masked out, and Lo-Fi pooling uses ceil mode (every "
              "pixel counted). No residual: the stitcher gates it.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def _split(self) -> tuple[int, int]:
        lo = self.heads if self.window == 1 else int(self.heads * self.alpha)
        return self.heads - lo, lo

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        s, d, (hi, lo) = self.window, c // self.heads, self._split()
        n, hp, wp = h * w, -(-h // s) * s, -(-w // s) * s
        total = 0
        if hi:
            total += b * hp * wp * c * 3 * hi * d + b * n * (hi * d) ** 2
            total += attention_macs(b * (hp // s) * (wp // s), hi, s * s, s * s, d)
        if lo:
            m = (hp // s) * (wp // s)
            total += b * n * c * lo * d + b * m * c * 2 * lo * d + b * n * (lo * d) ** 2
            total += attention_macs(b, lo, n, m, d)
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return HiLoAttention(c, self.heads, self.alpha, self.window, self.qkv_bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
