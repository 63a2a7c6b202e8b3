"""Global self-attention over feature maps: BoT's MHSA with 2-D relative logits and RT-DETR's AIFI encoder
layer — each takes and gives `b c h w`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..ops import attention_macs
from ._mixer_base import KeepShapeSpec

__all__ = ["BoTMHSASpec", "BoTSelfAttention", "AIFISpec", "AIFILayer", "sincos_2d"]


def _rel_index(n: int, span: int, device: torch.device) -> torch.Tensor:
    """``[i, j] → (j − i)`` clipped to ±(span − 1), shifted to index a table of ``2·span − 1`` rows."""
    pos = torch.arange(n, device=device)
    return (pos[None, :] - pos[:, None]).clamp(-(span - 1), span - 1) + span - 1


class BoTSelfAttention(nn.Module):
    """All-pairs attention over H·W positions from a 1×1 qkv conv; logits = q·kᵀ·scale + q·r_h + q·r_w, where
    r_h, r_w are learnt embeddings of the row and column offsets between query and key."""

    def __init__(self, c: int, heads: int, span: tuple[int, int], bias: bool, stride: int) -> None:
        super().__init__()
        d = c // heads
        self.heads, self.scale = heads, d**-0.5
        self.qkv = nn.Conv2d(c, 3 * c, 1, bias=bias)
        self.rel_h = nn.Parameter(torch.randn(2 * span[0] - 1, d) * self.scale)
        self.rel_w = nn.Parameter(torch.randn(2 * span[1] - 1, d) * self.scale)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q, k, v = rearrange(self.qkv(x), "b (three n d) h w -> three b n (h w) d", three=3, n=self.heads)
        emb_h = self.rel_h[_rel_index(h, (self.rel_h.shape[0] + 1) // 2, x.device)]  # h h d: query row, key row
        emb_w = self.rel_w[_rel_index(w, (self.rel_w.shape[0] + 1) // 2, x.device)]
        grid_q = rearrange(q, "b n (y x) d -> b n y x d", y=h)
        logit_h = torch.einsum("bnyxd,ykd->bnyxk", grid_q, emb_h)
        logit_w = torch.einsum("bnyxd,xkd->bnyxk", grid_q, emb_w)
        rel = rearrange(logit_h[..., :, None] + logit_w[..., None, :], "b n y x ky kx -> b n (y x) (ky kx)")
        attn = ((q @ k.transpose(-1, -2)) * self.scale + rel).softmax(dim=-1)
        return self.pool(rearrange(attn @ v, "b n (h w) d -> b (n d) h w", h=h))


@register_block
class BoTMHSASpec(KeepShapeSpec):
    """BoTNet multi-head self-attention: all-pairs attention with 2-D relative position logits, any H×W.

    Replaces the 3×3 conv of a bottleneck (Srinivas et al.). Example: ``{kind: bot_mhsa}``."""

    kind: Literal["bot_mhsa"] = "bot_mhsa"
    heads: PositiveInt = Field(4, le=64)
    """Attention heads; the channels must divide by it."""
    qkv_bias: bool = False
    """Bias on the 1×1 qkv conv."""
    stride: Literal[1, 2] = 1
    """2 average-pools the result by 2 (BoT's first block of the last stage)."""
    span: PositiveInt | None = Field(None, le=512)
    """Largest row/column offset with its own embedding (tables of 2·span − 1); default: the build size.
    Offsets beyond it share the last embedding, so the block runs at any H×W."""

    card = BlockCard(
        category="attention",
        paper=Paper("Bottleneck Transformers for Visual Recognition", "CVPR", 2021, "https://arxiv.org/abs/2101.11605"),
        aliases=("BoT", "BoT-MHSA", "BoTNet", "BottleneckAttn"),
        channel_rule="multiple_of:heads",
        insert_where="in place of the 3×3 conv of the bottlenecks of the last stage (c5)",
        notes="At its build size it equals timm's BottleneckAttn "
              "(scale on q·kᵀ only, as there); unlike timm, which asserts the build size, other sizes work: "
              "offsets beyond the table are clipped. Quadratic in H·W. No residual: the stitcher gates it.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        b, c, h, w = self.check_input(in_shapes)
        return (b, c, h // 2, w // 2) if self.stride == 2 else (b, c, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        n, d = h * w, c // self.heads
        return b * n * c * 3 * c + attention_macs(b, self.heads, n, n, d) + b * self.heads * n * (h + w) * d

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        b, c, h, w = self.check_input(in_shapes, sizes=False)
        span = (self.span or h, self.span or w)
        return BoTSelfAttention(c, self.heads, span, self.qkv_bias, self.stride)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 6, 6)], [(1, 16, 7, 5)]]


def sincos_2d(h: int, w: int, c: int, temperature: float, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sine-cosine position of every row-major token: ``(h·w, c)`` = [sin y·ω, cos y·ω, sin x·ω,
    cos x·ω] with ω = temperature^(−i/(c/4)).

    >>> sincos_2d(2, 3, 8, 10000.0, torch.device("cpu")).shape
    torch.Size([6, 8])
    """
    omega = 1.0 / temperature ** (torch.arange(c // 4, device=device, dtype=torch.float32) / (c // 4))
    y, x = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                          torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    y, x = y.flatten()[:, None] * omega, x.flatten()[:, None] * omega  # outer products, no matmul
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1)


class _InProjAttention(nn.Module):
    """Multi-head attention with one packed input projection (nn.MultiheadAttention's parameters), where
    queries/keys and values come from different inputs."""

    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * c, c))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * c))
        self.out_proj = nn.Linear(c, c)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, qk: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
        c = v.shape[-1]
        q, k = F.linear(qk, self.in_proj_weight[:2 * c], self.in_proj_bias[:2 * c]).chunk(2, dim=-1)
        v = F.linear(v, self.in_proj_weight[2 * c:], self.in_proj_bias[2 * c:])
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        return self.out_proj(rearrange(out, "b h n d -> b n (h d)"))


class AIFILayer(nn.Module):
    """A post-norm transformer encoder layer over the H·W tokens of a map; the sin-cos position is added to
    queries and keys only."""

    def __init__(self, c: int, hidden: int, heads: int, dropout: float, temperature: float) -> None:
        super().__init__()
        self.dropout, self.temperature = dropout, temperature
        self.attn = _InProjAttention(c, heads)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)
        self.norm1 = nn.LayerNorm(c)
        self.norm2 = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.dropout if self.training else 0.0
        t = rearrange(x, "b c h w -> b (h w) c")
        pos = sincos_2d(h, w, c, self.temperature, x.device).to(x.dtype)
        t = self.norm1(t + F.dropout(self.attn(t + pos, t, p), p, self.training))
        ffn = self.fc2(F.dropout(F.gelu(self.fc1(t)), p, self.training))
        t = self.norm2(t + F.dropout(ffn, p, self.training))
        return rearrange(t, "b (h w) c -> b c h w", h=h)


@register_block
class AIFISpec(KeepShapeSpec):
    """AIFI (RT-DETR): a transformer encoder layer over a feature map's tokens, with 2-D sin-cos positions.

    Attention-based intra-scale feature interaction on the top feature map (Zhao et al.). Example:
    ``{kind: aifi, hidden: 1024}``."""

    kind: Literal["aifi"] = "aifi"
    hidden: PositiveInt = Field(1024, le=16384)
    """Hidden width of the feed-forward network (RT-DETR: 1024; ultralytics' default cm: 2048)."""
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by 4 and by heads."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on attention weights and residual branches (training only)."""
    temperature: PositiveFloat = 10000.0
    """Temperature of the sin-cos position embedding."""

    card = BlockCard(
        category="attention",
        paper=Paper("DETRs Beat YOLOs on Real-time Object Detection", "CVPR", 2024, "https://arxiv.org/abs/2304.08069"),
        aliases=("AIFI", "RT-DETR encoder"),
        channel_rule="multiple_of:heads",
        insert_where="on the last (stride-32) backbone feature, before the CCFF/FPN neck",
        notes="Channels: a multiple of heads and of 4 (the sin-cos halves). Any H×W. Same "
              "parameters and outputs as ultralytics.nn.modules.AIFI 8.4 (parity test); RT-DETR's original code "
              "and ultralytics before the fix meshgrid (w, h) with 'ij', which scrambles the positions of "
              "non-square maps (square maps agree); this block encodes (row, col) of each token. Post-norm, so "
              "identity init is the stitcher's zero-gated residual.",
    )

    def channel_divisor(self) -> int:
        return self.heads * 4 // math.gcd(self.heads, 4)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        n = h * w
        return b * n * c * (4 * c + 2 * self.hidden) + attention_macs(b, self.heads, n, n, c // self.heads)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return AIFILayer(c, self.hidden, self.heads, self.dropout, self.temperature)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"hidden": 32, "heads": 4}, [[(2, 16, 6, 6)], [(1, 16, 7, 5)]]

