"""Partial self-attention of YOLOv10 (PSA) and YOLO11 (C2PSA): attention on half the channels, the other half
passed through, a 1×1 conv to mix. Child names are Ultralytics' (parity in tests/test_library_parity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..layers import ActName
from ._parts import Tally, cna

__all__ = ["ConvAttention", "PSABlock", "PartialSelfAttention", "C2PSASpec", "PSAYolov10Spec"]


def default_heads(c: int) -> int:
    """Ultralytics' head count ``max(c // 64, 1)``, lowered to the nearest divisor of ``c`` (where Ultralytics'
    own view() would fail).

    >>> default_heads(256), default_heads(200), default_heads(32)
    (4, 2, 1)
    """
    h = max(c // 64, 1)
    while c % h:
        h -= 1
    return h


class ConvAttention(nn.Module):
    """Multi-head attention over the h·w positions with 1×1 convs for q, k, v and the output, keys at
    ``attn_ratio`` of the head width, and a depthwise 3×3 positional conv on v added to the result."""

    def __init__(self, dim: int, heads: int, attn_ratio: float) -> None:
        super().__init__()
        self.num_heads, self.head_dim = heads, dim // heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = cna(dim, dim + 2 * self.key_dim * heads, 1, act="none")
        self.proj = cna(dim, dim, 1, act="none")
        self.pe = cna(dim, dim, 3, g=dim, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # b (heads, q|k|v) h w → b heads (q|k|v) n
        qkv = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)  # b heads n n
        out = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(out)


def _attention_macs(t: Tally, x: Shape, heads: int, attn_ratio: float) -> None:
    b, c, h, w = x
    hd = c // heads
    kd = int(hd * attn_ratio)
    n = h * w
    t.conv(x, c + 2 * kd * heads, 1)
    t.matmul(b * heads, n, kd, n)  # qᵀ k
    t.matmul(b * heads, hd, n, n)  # v attnᵀ
    t.conv(x, c, 3, g=c)
    t.conv(x, c, 1)


class PSABlock(nn.Module):
    """``x + attn(x)``, then ``x + ffn(x)`` (a 1×1 expand ×2, SiLU, 1×1 back)."""

    def __init__(self, c: int, heads: int, attn_ratio: float, act: str, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = ConvAttention(c, heads, attn_ratio)
        self.ffn = nn.Sequential(cna(c, 2 * c, 1, act=act), cna(2 * c, c, 1, act="none"))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


class PartialSelfAttention(nn.Module):
    """cv1 → split (a, b); b through ``blocks``; cv2 on cat(a, b). PSA (YOLOv10) keeps attn/ffn at top level."""

    def __init__(self, cin: int, cout: int, c: int, blocks: list[PSABlock], flat: bool, act: str) -> None:
        super().__init__()
        self.c = c
        self.cv1 = cna(cin, 2 * c, 1, act=act)
        self.cv2 = cna(2 * c, cout, 1, act=act)
        if flat:  # YOLOv10's PSA: one attention + FFN, children `attn`/`ffn` as Ultralytics names them
            self.attn, self.ffn = blocks[0].attn, blocks[0].ffn
            self.m = None
        else:
            self.m = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        if self.m is None:
            b = b + self.attn(b)
            b = b + self.ffn(b)
        else:
            b = self.m(b)
        return self.cv2(torch.cat((a, b), 1))


class _PSASpec(BlockSpec):
    out_channels: PositiveInt | None = None
    """Output channels; default the input's (Ultralytics requires in = out)."""
    expansion: PositiveFloat = Field(0.5, le=1)
    """Attention width c = int(in_channels × expansion); cv1 makes 2c channels, split in two."""
    heads: PositiveInt | None = None
    """Attention heads; default max(c // 64, 1) (lowered to a divisor of c)."""
    attn_ratio: PositiveFloat = Field(0.5, le=4)
    """Key width as a fraction of the head width."""
    act: ActName = "silu"
    """Activation of cv1, cv2 and the FFN's first conv."""

    channel_fields = ("out_channels",)

    def _dims(self, in_shapes: Sequence[Shape]) -> tuple[int, int, int]:
        self.expect_rank(in_shapes, 4, "b c h w")
        cin = in_shapes[0][1]
        c = int(cin * self.expansion)
        heads = self.heads or default_heads(max(c, 1))
        if c < 1 or c % heads or int(c // heads * self.attn_ratio) < 1:
            raise ShapeError(f"'{self.kind}': attention width c = int({cin} × {self.expansion}) = {c} needs to be "
                             f"divisible by heads={heads}, with a key width int(c / heads × {self.attn_ratio}) ≥ 1",
                             expected="more input channels or fewer heads", found=f"in_channels={cin}",
                             in_shapes=in_shapes)
        return cin, c, heads

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self._dims(in_shapes)
        b, cin, h, w = in_shapes[0]
        return (b, self.out_channels or cin, h, w)

    def _macs(self, in_shapes: Sequence[Shape], n: int) -> int:
        cin, c, heads = self._dims(in_shapes)
        t = Tally()
        y = t.conv(in_shapes[0], 2 * c, 1)
        half = (y[0], c, y[2], y[3])
        for _ in range(n):
            _attention_macs(t, half, heads, self.attn_ratio)
            t.conv(t.conv(half, 2 * c, 1), c, 1)
        t.conv(y, self.out_channels or cin, 1)
        return t.macs

    def _build(self, in_shapes: Sequence[Shape], n: int, flat: bool) -> nn.Module:
        cin, c, heads = self._dims(in_shapes)
        blocks = [PSABlock(c, heads, self.attn_ratio, self.act) for _ in range(n)]
        return PartialSelfAttention(cin, self.out_channels or cin, c, blocks, flat, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 32, 6, 6)], [(1, 16, 13, 9)]]


@register_block
class C2PSASpec(_PSASpec):
    """C2PSA (YOLO11): a CSP split whose second half runs through n PSA blocks (attention + FFN, residual)."""

    kind: Literal["c2psa"] = "c2psa"
    depth: PositiveInt = Field(1, le=16)
    """Number of PSA blocks (Ultralytics' `n`)."""

    card = BlockCard(
        category="attention",
        paper=Paper("YOLO11 by Ultralytics", "software", 2024, "https://github.com/ultralytics/ultralytics"),
        aliases=("C2PSA", "PSABlock"),
        channel_rule="min:4",
        insert_where="after SPPF at the end of a YOLO backbone (YOLO11 layer 10)",
        notes="Full attention over h·w positions: memory grows as (h·w)², so use it on the coarsest map. "
              "Equal to ultralytics' C2PSA parameter for parameter; heads default to Ultralytics' max(c//64, 1) "
              "but are lowered to a divisor of c where Ultralytics' view() would fail. The channel rule holds with "
              "heads unset; with heads set, c = int(in × expansion) must also divide by heads.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return self._macs(in_shapes, self.depth)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return self._build(in_shapes, self.depth, flat=False)


@register_block
class PSAYolov10Spec(_PSASpec):
    """PSA of YOLOv10 (Wang et al., NeurIPS 2024): partial self-attention — one attention + FFN on half the
    channels after a 1×1 split, the other half passed through."""

    kind: Literal["psa_yolov10"] = "psa_yolov10"

    card = BlockCard(
        category="attention",
        paper=Paper("YOLOv10: Real-Time End-to-End Object Detection", "NeurIPS", 2024,
                    "https://arxiv.org/abs/2405.14458"),
        aliases=("PSA", "PartialSelfAttention"),
        channel_rule="min:4",
        insert_where="after SPPF at the end of a YOLO backbone (YOLOv10 layer 10)",
        notes="Not polarized self-attention nor pyramid split attention (EPSA): those are other kinds. Full "
              "attention over h·w positions: use it on the coarsest map. Equal to ultralytics' PSA parameter "
              "for parameter.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return self._macs(in_shapes, 1)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return self._build(in_shapes, 1, flat=True)
