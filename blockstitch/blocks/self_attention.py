"""Multi-head self-attention over tokens, on `F.scaled_dot_product_attention` (flash/memory-efficient kernels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..errors import ShapeError
from ..registry import register_block
from .ops import attention_macs, linear_macs

__all__ = ["MHSASpec", "SelfAttention"]


class SelfAttention(nn.Module):
    """`to_qkv` in one linear (timm's `qkv`), SDPA, then the output projection `proj`."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))


@register_block
class MHSASpec(BlockSpec):
    """Multi-head self-attention on tokens (`b n c`); spatial inputs are bridged to tokens and back."""

    kind: Literal["mhsa"] = "mhsa"
    card = BlockCard(
        "token_mixer",
        paper=Paper("Attention Is All You Need", "NeurIPS", 2017, "https://arxiv.org/abs/1706.03762"),
        aliases=("MHSA", "MultiHeadAttention", "Attention", "MultiHeadSelfAttention"),
        channel_rule="multiple_of:heads",
        insert_where="in place of the token mixer of a transformer block; on the last stage of a CNN",
    )
    heads: PositiveInt = 8
    """Number of heads; the channels must divide by it."""
    qkv_bias: bool = True
    """Bias on the q/k/v projection."""
    attn_drop: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on attention weights (training only)."""
    proj_drop: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout after the output projection."""

    in_layouts = ("b n c",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 3, "b n c")
        c = in_shapes[0][2]
        if c % self.heads:
            raise ShapeError(f"{c} channels do not split into {self.heads} heads", in_shapes=in_shapes,
                             expected=f"channels divisible by {self.heads}", found=str(c),
                             hint="change heads, or the width of the block before")
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, n, c = in_shapes[0]
        return (linear_macs((b, n, c), 3 * c) + attention_macs(b, self.heads, n, n, c // self.heads)
                + linear_macs((b, n, c), c))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SelfAttention(in_shapes[0][2], self.heads, self.qkv_bias, self.attn_drop, self.proj_drop)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4}, [[(2, 10, 32)], [(1, 49, 32)]]
