"""The MobileViT block: local convolutions, a transformer across patches ("transformers as convolutions"),
then fusion with the input — on `b c h w`, any H×W.
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
from ._mixer_base import KeepShapeSpec, OddKernel

__all__ = ["MobileViTSpec", "MobileViTBlock"]


def _conv_bn_silu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.SiLU())


class _PreNormLayer(nn.Module):
    """A pre-norm transformer layer: x + attn(norm(x)), then x + mlp(norm(x)), SiLU in the MLP."""

    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(self.norm1(t)), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        t = t + self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)"))
        return t + self.fc2(F.silu(self.fc1(self.norm2(t))))


class MobileViTBlock(nn.Module):
    """k×k conv → 1×1 to the transformer width → unfold into p×p patches; pixels at the same place in every
    patch form a sequence for the transformer → fold → 1×1 back → concat with the input → k×k fusion conv.
    A map that is not a multiple of p is resized to one (bilinear) and back, as the reference code does."""

    def __init__(self, c: int, d: int, depth: int, heads: int, patch: int, mlp_ratio: float, kernel: int) -> None:
        super().__init__()
        self.patch = patch
        self.conv_kxk = _conv_bn_silu(c, c, kernel)
        self.conv_1x1 = nn.Conv2d(c, d, 1, bias=False)
        self.transformer = nn.Sequential(*(_PreNormLayer(d, heads, int(d * mlp_ratio)) for _ in range(depth)))
        self.norm = nn.LayerNorm(d)
        self.conv_proj = _conv_bn_silu(d, c, 1)
        self.conv_fusion = _conv_bn_silu(2 * c, c, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, (h, w) = self.patch, x.shape[-2:]
        y = self.conv_1x1(self.conv_kxk(x))
        nh, nw = math.ceil(h / p), math.ceil(w / p)
        resize = (nh * p, nw * p) != (h, w)
        if resize:
            y = F.interpolate(y, size=(nh * p, nw * p), mode="bilinear", align_corners=False)
        t = rearrange(y, "b d (nh ph) (nw pw) -> (b ph pw) (nh nw) d", ph=p, pw=p)
        t = self.norm(self.transformer(t))
        y = rearrange(t, "(b ph pw) (nh nw) d -> b d (nh ph) (nw pw)", ph=p, pw=p, nh=nh)
        if resize:
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return self.conv_fusion(torch.cat([x, self.conv_proj(y)], dim=1))


@register_block
class MobileViTSpec(KeepShapeSpec):
    """MobileViT block: local convs, a transformer across p×p patches, fused with the input.

    Transformers as convolutions (Mehta & Rastegari). Example:
    ``{kind: mobilevit, dim: 96, depth: 2, patch: 2}``."""

    kind: Literal["mobilevit"] = "mobilevit"
    dim: PositiveInt | None = Field(None, le=4096)
    """Transformer width d (default: the input channels); must divide by heads."""
    depth: PositiveInt = Field(2, le=24)
    """Transformer layers L."""
    heads: PositiveInt = Field(4, le=64)
    """Attention heads."""
    patch: PositiveInt = Field(2, le=16)
    """Patch side p (the paper: 2)."""
    mlp_ratio: PositiveFloat = Field(2.0, le=16)
    """Hidden width of each transformer MLP, relative to d."""
    kernel: OddKernel = 3
    """Kernel of the local and the fusion convs."""

    card = BlockCard(
        category="block",
        paper=Paper("MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision Transformer", "ICLR", 2022,
                    "https://arxiv.org/abs/2110.02178"),
        aliases=("MobileViT", "MobileViTBlock", "MobileViTAttention"),
        channel_rule="multiple_of:heads",
        insert_where="after the stride-8/16/32 MobileNet stages (MobileViT), or after a backbone stage",
        notes="Any H×W (maps resized to a multiple of the patch and back, as in the reference code). Channels: "
              "dim (default: the channels) must divide by heads. Equals timm.models.mobilevit.MobileVitBlock with "
              "SiLU layers (parity test). fightingcv's MobileViTAttention hard-codes 3 layers of 8×64 heads and "
              "needs H, W multiples of its patch. Ends in conv-BN-SiLU, so identity init is the stitcher's.",
    )

    def width(self, c: int) -> int:
        """Transformer width for ``c`` input channels."""
        return self.dim or c

    def channel_divisor(self) -> int:
        return 1 if self.dim else self.heads

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        d, p, k2 = self.width(c), self.patch, self.kernel**2
        n = math.ceil(h / p) * math.ceil(w / p)
        tokens, hidden = b * p * p * n, int(d * self.mlp_ratio)
        layer = tokens * d * (4 * d + 2 * hidden) + attention_macs(b * p * p, self.heads, n, n, d // self.heads)
        return b * h * w * (c * c * k2 + c * d + d * c + 2 * c * c * k2) + self.depth * layer

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        d = self.width(c)
        if d % self.heads:
            raise ValueError(f"transformer width {d} does not split into {self.heads} heads")
        return MobileViTBlock(c, d, self.depth, self.heads, self.patch, self.mlp_ratio, self.kernel)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"depth": 1}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
