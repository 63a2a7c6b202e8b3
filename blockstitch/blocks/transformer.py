"""Pre-norm transformer encoder block (ViT): x + attn(norm(x)), then x + mlp(norm(x)), with DropPath."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..registry import register_block
from .layers import ActName, get_act
from .ops import linear_macs
from .self_attention import MHSASpec, SelfAttention

__all__ = ["TransformerSpec", "TransformerBlock"]


class TransformerBlock(nn.Module):
    """timm's ViT block names (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`)."""

    def __init__(self, dim: int, heads: int, hidden: int, qkv_bias: bool, act: nn.Module, eps: float,
                 drop: float, attn_drop: float, drop_path: float) -> None:
        from timm.layers import DropPath, Mlp  # timm's modules (its names); imported when one is built

        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden, act_layer=lambda: act, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_block
class TransformerSpec(BlockSpec):
    """Transformer encoder block on tokens (`b n c`): pre-norm self-attention and MLP, residual both."""

    kind: Literal["transformer"] = "transformer"
    card = BlockCard(
        "block",
        paper=Paper("An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
                    "ICLR", 2021, "https://arxiv.org/abs/2010.11929"),
        aliases=("Block", "TransformerBlock", "ViTBlock", "TransformerEncoderLayer"),
        channel_rule="multiple_of:heads",
        insert_where="stacked after the patch embedding",
    )
    heads: PositiveInt = 8
    """Attention heads."""
    mlp_ratio: PositiveFloat = 4.0
    """MLP hidden width = mlp_ratio × channels."""
    qkv_bias: bool = True
    """Bias on the q/k/v projection."""
    act: ActName = "gelu"
    """MLP activation."""
    norm_eps: PositiveFloat = 1e-6
    """LayerNorm epsilon (1e-6 in ViT)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout in the MLP and after the attention projection."""
    attn_drop: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on attention weights."""
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth rate of both residual branches."""

    in_layouts = ("b n c",)

    def _attn(self) -> MHSASpec:
        return MHSASpec(heads=self.heads, qkv_bias=self.qkv_bias)

    def hidden(self, dim: int) -> int:
        """MLP hidden width: ``int(dim × mlp_ratio)`` as timm's Mlp, at least 1 (a zero-width MLP is no MLP, and
        the counters disagree on empty matmuls)."""
        return max(1, int(dim * self.mlp_ratio))

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return self._attn().out_shape(in_shapes)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, n, c = in_shapes[0]
        hidden = self.hidden(c)
        return self._attn().macs(in_shapes) + linear_macs((b, n, c), hidden) + linear_macs((b, n, hidden), c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][2]
        return TransformerBlock(c, self.heads, self.hidden(c), self.qkv_bias, get_act(self.act), self.norm_eps,
                                self.dropout, self.attn_drop, self.drop_path)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 2, "mlp_ratio": 2.0, "drop_path": 0.1}, [[(2, 10, 16)], [(1, 17, 16)]]
