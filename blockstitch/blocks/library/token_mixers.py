"""Cheap token mixers for `b c h w` maps: PoolFormer's pooling block, external attention, SwiftFormer's
efficient additive attention and EfficientViT's lightweight multi-scale linear attention.

Each takes a feature map and gives one back; where the paper's module works on tokens, the module flattens
H×W itself, so no layout bridge is needed around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._mixer_base import ChannelScale, KeepShapeSpec, OddKernel, zero_module

__all__ = ["PoolFormerSpec", "PoolFormerBlock", "ExternalAttnSpec", "ExternalAttention", "SwiftFormerAttnSpec",
           "EfficientAdditiveAttention", "EfficientViTMSLASpec", "LiteMultiScaleLinearAttention"]


class PoolFormerBlock(nn.Module):
    """MetaFormer with pooling: ``x + s1·(pool(n1(x)) − n1(x))``, then ``x + s2·mlp(n2(x))``; norms are
    GroupNorm with one group, the MLP is two 1×1 convs with GELU, s1/s2 are per-channel layer scales."""

    def __init__(self, c: int, pool_size: int, hidden: int, layer_scale: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, c)
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)
        self.scale1 = ChannelScale(c, layer_scale)
        self.norm2 = nn.GroupNorm(1, c)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)
        self.scale2 = ChannelScale(c, layer_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.scale1(self.pool(y) - y)  # pooling minus identity: the mixer alone, the residual adds x
        return x + self.scale2(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


@register_block
class PoolFormerSpec(KeepShapeSpec):
    """PoolFormer block (MetaFormer): average pooling as the token mixer of a pre-norm residual block.

    Pooling minus identity, then an MLP, each with a layer scale (Yu et al.). Example:
    ``{kind: poolformer, mlp_ratio: 4}``."""

    kind: Literal["poolformer"] = "poolformer"
    pool_size: OddKernel = 3
    """Pooling window (stride 1, padding so H×W is kept, padded positions not counted)."""
    mlp_ratio: PositiveFloat = Field(4.0, le=16)
    """Hidden width of the MLP over the channels."""
    layer_scale: float = Field(1e-5, ge=0.0, le=1.0)
    """Initial value of both per-channel layer scales."""

    card = BlockCard(
        category="block",
        paper=Paper("MetaFormer Is Actually What You Need for Vision", "CVPR", 2022,
                    "https://arxiv.org/abs/2111.11418"),
        aliases=("PoolFormer", "PoolFormerBlock", "Pooling", "MetaFormer"),
        insert_where="as a backbone block after a patch embedding / downsampling; also a cheap neck block",
        notes="Equals timm's MetaFormerBlock with Pooling, GroupNorm1, GELU, MLP biases and layer scale (the "
              "PoolFormer v1 setting). Identity init zeroes both layer scales.",
    )

    def hidden(self, c: int) -> int:
        """Hidden width of the MLP."""
        return int(self.mlp_ratio * c)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return 2 * b * h * w * c * self.hidden(c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return PoolFormerBlock(c, self.pool_size, self.hidden(c), self.layer_scale)

    def init_identity(self, module: nn.Module) -> bool:
        zero_module(module.scale1, module.scale2)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"mlp_ratio": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class ExternalAttention(nn.Module):
    """Two linear layers against a learnt memory of S slots: softmax over the tokens, then an l1 normalisation
    over the slots (the paper's double normalisation), then back to channels."""

    def __init__(self, c: int, slots: int) -> None:
        super().__init__()
        self.mk = nn.Linear(c, slots, bias=False)
        self.mv = nn.Linear(slots, c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        attn = self.mk(rearrange(x, "b c h w -> b (h w) c")).softmax(dim=1)  # b n s: softmax over tokens
        attn = attn / attn.sum(dim=2, keepdim=True)
        return rearrange(self.mv(attn), "b (h w) c -> b c h w", h=h, w=w)


@register_block
class ExternalAttnSpec(KeepShapeSpec):
    """External attention: attention against two small learnt memories, linear in the pixels; b c h w in.

    Two linear layers with double normalisation, shared by all samples (Guo et al.). Example:
    ``{kind: external_attn, slots: 64}``."""

    kind: Literal["external_attn"] = "external_attn"
    slots: PositiveInt = Field(64, le=4096)
    """Size S of the external memory."""

    card = BlockCard(
        category="attention",
        paper=Paper("Beyond Self-attention: External Attention using Two Linear Layers for Visual Tasks", "TPAMI",
                    2022, "https://arxiv.org/abs/2105.02358"),
        aliases=("ExternalAttention", "EA", "EANet"),
        insert_where="after a backbone stage, or in place of self-attention (its output replaces the input)",
        notes="fightingcv's ExternalAttention takes tokens (b n c) although collections list it beside feature-map "
              "modules; this block takes b c h w and flattens H×W itself (same weights: mk, mv). Its output is "
              "the attention result, not x + result, so identity init is the stitcher's zero-gated residual.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return 2 * b * h * w * c * self.slots

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ExternalAttention(in_shapes[0][1], self.slots)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"slots": 16}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class EfficientAdditiveAttention(nn.Module):
    """Additive attention without a key–value product: l2-normalised queries score against one learnt vector
    w_g, the scores pool the queries into a global query, which scales the keys; `proj` + residual query,
    then `final` back to the input width."""

    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        inner = c * heads
        self.scale = c**-0.5
        self.to_query = nn.Linear(c, inner)
        self.to_key = nn.Linear(c, inner)
        self.w_g = nn.Parameter(torch.randn(inner, 1))
        self.proj = nn.Linear(inner, inner)
        self.final = nn.Linear(inner, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        tokens = rearrange(x, "b c h w -> b (h w) c")
        query = F.normalize(self.to_query(tokens), dim=-1)
        key = F.normalize(self.to_key(tokens), dim=-1)
        score = F.normalize(query @ self.w_g * self.scale, dim=1)  # b n 1, normalised over the tokens
        global_query = (score * query).sum(dim=1, keepdim=True)  # b 1 inner
        out = self.final(self.proj(global_query * key) + query)
        return rearrange(out, "b (h w) c -> b c h w", h=h, w=w)


@register_block
class SwiftFormerAttnSpec(KeepShapeSpec):
    """Efficient additive attention (SwiftFormer): global context in linear time, no q·kᵀ matrix.

    One learnt scoring vector pools the queries into a global query that scales the keys (Shaker et al.).
    Example: ``{kind: swiftformer_attn}``."""

    kind: Literal["swiftformer_attn"] = "swiftformer_attn"
    heads: PositiveInt = Field(1, le=16)
    """Width multiplier of the query/key projections (SwiftFormer's num_heads; the paper uses 1)."""

    card = BlockCard(
        category="attention",
        paper=Paper("SwiftFormer: Efficient Additive Attention for Transformer-based Real-time Mobile Vision "
                    "Applications", "ICCV", 2023, "https://arxiv.org/abs/2303.15446"),
        aliases=("EfficientAdditiveAttention", "EfficientAdditiveAttnetion", "SwiftFormer"),
        insert_where="as the global mixer of a late-stage block (after a local conv representation)",
        notes="token_dim equals the input width so the block keeps the shape; equals timm's "
              "swiftformer.EfficientAdditiveAttention(in_dims=c, token_dim=c). No residual inside.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        inner = c * self.heads
        return b * h * w * (2 * c * inner + inner + inner * inner + inner * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return EfficientAdditiveAttention(in_shapes[0][1], self.heads)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class LiteMultiScaleLinearAttention(nn.Module):
    """ReLU linear attention over q, k, v from a 1×1 conv and from depthwise-aggregated copies of it (one per
    scale: k×k depthwise, then a grouped 1×1); each head normalises by ``q·Σk``; a 1×1 conv + BN projects."""

    def __init__(self, c: int, head_dim: int, scales: Sequence[int], residual: bool, eps: float = 1e-5) -> None:
        super().__init__()
        heads = c // head_dim
        total = heads * head_dim
        self.head_dim, self.residual, self.eps = head_dim, residual, eps
        self.qkv = nn.Conv2d(c, 3 * total, 1, bias=False)
        self.aggreg = nn.ModuleList(nn.Sequential(
            nn.Conv2d(3 * total, 3 * total, k, padding=k // 2, groups=3 * total, bias=False),
            nn.Conv2d(3 * total, 3 * total, 1, groups=3 * heads, bias=False)) for k in scales)
        self.proj = nn.Conv2d(total * (1 + len(scales)), c, 1, bias=False)
        self.norm = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        qkv = self.qkv(x)
        qkv = torch.cat([qkv] + [op(qkv) for op in self.aggreg], dim=1)
        q, k, v = rearrange(qkv, "b (g three d) h w -> three b g (h w) d", three=3, d=self.head_dim).float()
        q, k = F.relu(q), F.relu(k)
        v = F.pad(v, (0, 1), value=1.0)  # a ones column: the same product also gives the normaliser q·Σk
        out = q @ (k.transpose(-1, -2) @ v)  # b g n (d+1), linear in n
        out = (out[..., :-1] / (out[..., -1:] + self.eps)).to(x.dtype)
        out = self.norm(self.proj(rearrange(out, "b g (h w) d -> b (g d) h w", h=h, w=w)))
        return x + out if self.residual else out


@register_block
class EfficientViTMSLASpec(KeepShapeSpec):
    """Lightweight multi-scale linear attention (EfficientViT, MIT): ReLU linear attention.

    Multi-scale tokens from small depthwise kernels, linear in the pixels (Cai et al.). Example:
    ``{kind: efficientvit_msla}``."""

    kind: Literal["efficientvit_msla"] = "efficientvit_msla"
    head_dim: PositiveInt = Field(8, le=256)
    """Channels per head (the paper's dim = 8); the input width must be a multiple of it."""
    scales: tuple[OddKernel, ...] = Field((5,), max_length=4)
    """Depthwise kernels of the multi-scale aggregation branches."""
    residual: bool = True
    """Add the input back (EfficientViT's context module is x + MSLA(x))."""

    card = BlockCard(
        category="attention",
        paper=Paper("EfficientViT: Lightweight Multi-Scale Attention for High-Resolution Dense Prediction", "ICCV",
                    2023, "https://arxiv.org/abs/2205.14756"),
        aliases=("LiteMLA", "MSLA", "EfficientViT attention"),
        channel_rule="multiple_of:head_dim",
        insert_where="as the context module of a late backbone stage (followed by an MBConv), or in the neck",
        notes="Equals timm's efficientvit_mit.LiteMLA "
              "(dim=head_dim, scales) plus the optional residual; attention runs in float32 as there. "
              "Identity init zeroes the projection's BatchNorm (with residual=True).",
    )

    def channel_divisor(self) -> int:
        return self.head_dim

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        n, d, groups = h * w, self.head_dim, (c // self.head_dim) * (1 + len(self.scales))
        convs = n * c * 3 * c + sum(n * 3 * c * k * k for k in self.scales)  # qkv, depthwise aggregation
        convs += len(self.scales) * n * 3 * c * d + n * c * (1 + len(self.scales)) * c
        return b * (convs + 2 * groups * n * d * (d + 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.check_input(in_shapes, sizes=False)
        return LiteMultiScaleLinearAttention(in_shapes[0][1], self.head_dim, self.scales, self.residual)

    def init_identity(self, module: nn.Module) -> bool:
        if not self.residual:
            return False
        zero_module(module.norm)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"scales": [3, 5]}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
