"""Cross-shaped window self-attention (CSWin): half the heads attend within horizontal stripes, half within
vertical stripes, with a locally-enhanced positional encoding (LePE) — on `b c h w`, any H×W.
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
from ._mixer_base import KeepShapeSpec

__all__ = ["CSWinAttnSpec", "CrossShapedWindowAttention"]


def _ceil_to(n: int, k: int) -> int:
    return -(-n // k) * k


class CrossShapedWindowAttention(nn.Module):
    """qkv → channel halves → stripe attention (rows of `stripe` × full width | full height × `stripe` columns),
    each plus a 3×3 depthwise conv of its values inside the stripe (LePE) → concatenated → `proj`. A ragged last
    stripe is zero-padded and its padded keys are masked out."""

    def __init__(self, c: int, heads: int, stripe: int) -> None:
        super().__init__()
        self.heads, self.stripe, self.scale = heads // 2, stripe, (c // heads) ** -0.5
        half = c // 2
        self.qkv = nn.Linear(c, 3 * c)
        self.lepe = nn.ModuleList(nn.Conv2d(half, half, 3, padding=1, groups=half) for _ in range(2))
        self.proj = nn.Linear(c, c)

    def _stripes(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lepe: nn.Module,
                 rows: bool) -> torch.Tensor:
        """Attention inside stripes of `b h w c` tensors (rows: `stripe` rows each, else `stripe` columns)."""
        h, w = q.shape[1:3]
        sy, sx = (self.stripe, w) if rows else (h, self.stripe)
        hp, wp = _ceil_to(h, sy), _ceil_to(w, sx)
        pad = (0, 0, 0, wp - w, 0, hp - h)
        to_win = "b (gy sy) (gx sx) (n d) -> (b gy gx) n (sy sx) d"
        q, k, v = (rearrange(F.pad(t, pad), to_win, sy=sy, sx=sx, n=self.heads) for t in (q, k, v))
        attn = (q @ k.transpose(-1, -2)) * self.scale  # windows n t t
        if hp != h or wp != w:
            real = F.pad(torch.ones(h, w, dtype=torch.bool, device=q.device), (0, wp - w, 0, hp - h))
            real = rearrange(real, "(gy sy) (gx sx) -> (gy gx) (sy sx)", sy=sy, sx=sx)
            real = real.repeat(attn.shape[0] // real.shape[0], 1)  # the same for every batch element
            attn = attn.masked_fill(~real[:, None, None, :], float("-inf"))
        pe = lepe(rearrange(v, "bw n (sy sx) d -> bw (n d) sy sx", sy=sy))  # convolution stays inside the stripe
        out = attn.softmax(dim=-1) @ v + rearrange(pe, "bw (n d) sy sx -> bw n (sy sx) d", n=self.heads)
        out = rearrange(out, "(b gy gx) n (sy sx) d -> b (gy sy) (gx sx) (n d)", gy=hp // sy, gx=wp // sx, sy=sy)
        return out[:, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = rearrange(x, "b c h w -> b h w c")
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        half = q.shape[-1] // 2
        rows = self._stripes(q[..., :half], k[..., :half], v[..., :half], self.lepe[0], rows=True)
        cols = self._stripes(q[..., half:], k[..., half:], v[..., half:], self.lepe[1], rows=False)
        return rearrange(self.proj(torch.cat([rows, cols], dim=-1)), "b h w c -> b c h w")


@register_block
class CSWinAttnSpec(KeepShapeSpec):
    """Cross-shaped window attention (CSWin): horizontal and vertical stripe attention in parallel.

    Half the heads per direction, with a locally-enhanced positional encoding (Dong et al.). Example:
    ``{kind: cswin_attn, stripe: 7}``."""

    kind: Literal["cswin_attn"] = "cswin_attn"
    heads: PositiveInt = Field(8, le=64, multiple_of=2)
    """Attention heads, split evenly between the two stripe directions (even); channels must divide by it."""
    stripe: PositiveInt = Field(7, le=64)
    """Stripe width sw (CSWin: 1, 2, 7 by stage; the map side for full attention)."""

    card = BlockCard(
        category="attention",
        paper=Paper("CSWin Transformer: A General Vision Transformer Backbone with Cross-Shaped Windows", "CVPR",
                    2022, "https://arxiv.org/abs/2107.00652"),
        aliases=("CSWin", "CSWinAttention", "LePEAttention", "cross-shaped window attention"),
        channel_rule="multiple_of:heads",
        insert_where="in place of (window) self-attention of a hierarchical backbone's blocks",
        notes="Any H×W: at multiples of the stripe it is the paper's; a ragged last stripe is zero-padded with "
              "its padded keys masked (CSWin itself needs multiples). LePE is a 3×3 depthwise conv of the values "
              "within each stripe. No residual: the stitcher gates it.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        s, half, heads, d = self.stripe, c // 2, self.heads // 2, c // self.heads
        hp, wp = _ceil_to(h, s), _ceil_to(w, s)
        rows = attention_macs(b * hp // s, heads, s * w, s * w, d) + b * hp * w * half * 9
        cols = attention_macs(b * wp // s, heads, h * s, h * s, d) + b * h * wp * half * 9
        return b * h * w * c * 4 * c + rows + cols

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return CrossShapedWindowAttention(c, self.heads, self.stripe)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4, "stripe": 3}, [[(2, 16, 6, 6)], [(1, 16, 13, 9)]]
