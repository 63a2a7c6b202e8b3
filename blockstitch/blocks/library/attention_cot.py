"""The Contextual Transformer block (CoT): self-attention over each k×k neighbourhood whose attention comes from
the static context of the keys (a k×k conv) and the query together. Written from the paper; keeps its `b c h w`
input's shape. Its output is K1 + K2 (not a gate), so for identity init the stitcher wraps it in a zero-gated
residual.
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
from ._attn_base import GateSpec

__all__ = ["CoTSpec", "ContextualTransformer"]


class ContextualTransformer(nn.Module):
    """CoT: K1 = k×k grouped conv of x (static context); A = two 1×1 convs on [K1, x] (one k×k attention map per
    `share` channels, GroupNorm'd); K2 = the k×k neighbourhood of the values weighted by A; out = K1 + K2."""

    def __init__(self, c: int, k: int, key_groups: int, share: int, factor: int) -> None:
        super().__init__()
        self.k, self.share = k, share
        mid, maps = max(1, 2 * c // factor), c // share
        self.key = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, groups=key_groups, bias=False),
                                 nn.BatchNorm2d(c), nn.ReLU())
        self.value = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
        self.embed = nn.Sequential(nn.Conv2d(2 * c, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                   nn.Conv2d(mid, k * k * maps, 1), nn.GroupNorm(maps, k * k * maps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k1 = self.key(x)
        attn = self.embed(torch.cat((k1, x), 1)).reshape(b, c // self.share, 1, self.k * self.k, h * w)
        values = F.unfold(self.value(x), self.k, padding=self.k // 2)  # b (c k k) (h w), zero-padded borders
        values = values.reshape(b, c // self.share, self.share, self.k * self.k, h * w)
        k2 = (attn * values).sum(3).reshape(b, c, h, w)  # local matrix multiplication
        return k1 + k2


@register_block
class CoTSpec(GateSpec):
    """Contextual Transformer block (Li et al., CoTNet): contextual self-attention over k×k grids, mining the
    static context among the keys to guide a dynamic attention. Example: ``{kind: cot}``."""

    kind: Literal["cot"] = "cot"
    card = BlockCard(
        "attention",
        paper=Paper("Contextual Transformer Networks for Visual Recognition", "TPAMI", 2022,
                    "https://arxiv.org/abs/2107.12292"),
        aliases=("CoT", "CoTAttention", "CoTLayer", "CoTBlock", "ContextualTransformer"),
        channel_rule="multiple_of:channel_multiple",
        insert_where="in place of the 3×3 conv of each bottleneck (CoTNet); after C2f/C3 in YOLO forks",
        notes="Pure PyTorch (the paper's aggregation CUDA op is an unfold + weighted sum). K1 and K2 are fused by "
              "addition as the paper's equations state; the released code's split-attention fusion is left out.",
    )
    kernel_size: PositiveInt = Field(3, le=9)
    """Neighbourhood k (odd)."""
    key_groups: PositiveInt = Field(4, le=64)
    """Groups of the k×k key conv."""
    share: PositiveInt = Field(8, le=64)
    """Channels that share one attention map."""
    factor: PositiveInt = Field(4, le=64)
    """Reduction of the attention embedding (2c / factor)."""

    @property
    def channel_multiple(self) -> int:
        return math.lcm(self.key_groups, self.share)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        n, k2, mid = b * h * w, self.kernel_size**2, max(1, 2 * c // self.factor)
        return n * (c * (c // self.key_groups) * k2 + c * c + 2 * c * mid + mid * k2 * (c // self.share))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check(in_shapes)[1]
        return ContextualTransformer(c, self.kernel_size, self.key_groups, self.share, self.factor)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"share": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
