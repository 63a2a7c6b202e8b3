"""Pixel-to-pixel (non-local) attention on `b c h w` maps: the non-local block, GCNet's global context block,
DANet's position + channel attention, CCNet's criss-cross attention and A²-Nets' double attention. Each is
written from its paper, keeps its input's shape, accepts any H×W (nothing is fixed at construction), and adds its
result to the input through a last layer or scale that identity init zeroes, so module(x) == x exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._attn_base import GateSpec, ResidualGamma, zero_

__all__ = ["NonLocalSpec", "GCBlockSpec", "DANetSpec", "CrissCrossSpec", "DoubleAttnSpec"]


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block: ``x + BN(W · softmax(θ(x)ᵀ φ(x)) g(x))``."""

    def __init__(self, c: int, inner: int, subsample: bool) -> None:
        super().__init__()
        self.theta, self.phi, self.g = (nn.Conv2d(c, inner, 1) for _ in range(3))
        self.pool = nn.MaxPool2d(2) if subsample else nn.Identity()
        self.out = nn.Sequential(nn.Conv2d(inner, c, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # b (h w) i
        k = self.pool(self.phi(x)).flatten(2)  # b i n
        v = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # b n i
        y = (q @ k).softmax(-1) @ v  # b (h w) i
        return x + self.out(y.transpose(1, 2).reshape(b, -1, h, w))


@register_block
class NonLocalSpec(GateSpec):
    """Non-local block (Wang et al.): every position attends to every other (embedded Gaussian), added back
    through a 1×1 conv and BatchNorm. Example: ``{kind: non_local}``."""

    kind: Literal["non_local"] = "non_local"
    card = BlockCard(
        "attention",
        paper=Paper("Non-local Neural Networks", "CVPR", 2018, "https://arxiv.org/abs/1711.07971"),
        aliases=("NonLocal", "NonLocalBlock", "NLBlock", "NonLocal2d", "NLNet"),
        insert_where="after res3/res4 stages (a few blocks; cost grows with (H·W)²)",
        notes="Identity init zeroes the last BatchNorm's scale and shift, as the paper initialises it. "
              "`subsample: true` max-pools φ and g (then H and W must be ≥ 2).",
    )
    reduction: PositiveInt = Field(2, le=64)
    """Inner width = channels / reduction (the paper halves it)."""
    subsample: bool = False
    """Max-pool φ and g by 2 (the paper's cheaper variant)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        i, n = max(1, c // self.reduction), h * w
        m = (h // 2) * (w // 2) if self.subsample else n
        return b * n * c * i * 4 + 2 * b * n * m * i  # θ, φ, g, W convs + the two products

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return NonLocal(c, max(1, c // self.reduction), self.subsample)

    def init_identity(self, module: nn.Module) -> bool:
        zero_(module.out[1])
        return True


class GlobalContext(nn.Module):
    """GC block: softmax-weighted global pooling (one context vector), a bottleneck transform with LayerNorm,
    added to every position."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.mask = nn.Conv2d(c, 1, 1, bias=False)  # a bias before the softmax over positions cancels out
        self.transform = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.LayerNorm([hidden, 1, 1]), nn.ReLU(),
                                       nn.Conv2d(hidden, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weights = self.mask(x).flatten(2).softmax(-1)  # b 1 (h w)
        context = (x.flatten(2) @ weights.transpose(1, 2)).reshape(b, c, 1, 1)
        return x + self.transform(context)


@register_block
class GCBlockSpec(GateSpec):
    """Global Context block (Cao et al., GCNet): the query-independent non-local block — one attention-pooled
    context for all positions — with an SE-like bottleneck, fused by addition. Example: ``{kind: gc_block}``.

    Keep ``channels / reduction ≥ 2``: a one-channel bottleneck makes its LayerNorm constant and the whole
    context branch untrainable (as in the paper's code at such widths). The attention-mask conv has no bias: the
    paper's code (and timm's) gives it one, but a constant added before the softmax over positions cancels out,
    so that parameter never receives a gradient."""

    kind: Literal["gc_block"] = "gc_block"
    card = BlockCard(
        "attention",
        paper=Paper("GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", "ICCV Workshops", 2019,
                    "https://arxiv.org/abs/1904.11492"),
        aliases=("GC", "GCBlock", "GCNet", "ContextBlock", "GlobalContextBlock"),
        insert_where="after the last 1×1 conv of every bottleneck in res3–res5, before the addition",
        notes="Identity init zeroes the last 1×1 conv, as the paper initialises it.",
    )
    reduction: PositiveInt = Field(16, le=1024)
    """Bottleneck ratio r (1/16 in the paper)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        return 2 * b * h * w * c + 2 * b * c * max(1, c // self.reduction)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return GlobalContext(c, max(1, c // self.reduction))

    def init_identity(self, module: nn.Module) -> bool:
        zero_(module.transform[3])
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        # reduction 4, not 16: at 16 channels a reduction of 16 leaves a one-channel bottleneck, whose LayerNorm
        # output is constant, so every gradient before it is exactly zero (check-module rightly calls it dead)
        return {"reduction": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class DualAttention(nn.Module):
    """DANet: position attention (pixels attend to pixels) and channel attention (channels attend to channels),
    each scaled by a learnt γ that starts at 0, both added to the input."""

    def __init__(self, c: int, inner: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, inner, 1), nn.Conv2d(c, inner, 1), nn.Conv2d(c, c, 1)
        self.gamma_pos, self.gamma_chan = ResidualGamma(), ResidualGamma()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k = self.q(x).flatten(2).transpose(1, 2), self.k(x).flatten(2)  # b n i, b i n
        pos = (self.v(x).flatten(2) @ (q @ k).softmax(-1).transpose(1, 2)).reshape(b, c, h, w)
        flat = x.flatten(2)  # b c n
        energy = flat @ flat.transpose(1, 2)  # b c c
        attn = (energy.amax(-1, keepdim=True) - energy).softmax(-1)  # the paper's max − energy
        chan = (attn @ flat).reshape(b, c, h, w)
        return self.gamma_chan(self.gamma_pos(x, pos), chan)


@register_block
class DANetSpec(GateSpec):
    """Dual attention (Fu et al., DANet): the position attention module and the channel attention module in
    parallel, summed. Written for any H×W (nothing fixed at construction). Example: ``{kind: danet}``."""

    kind: Literal["danet"] = "danet"
    card = BlockCard(
        "attention",
        paper=Paper("Dual Attention Network for Scene Segmentation", "CVPR", 2019, "https://arxiv.org/abs/1809.02983"),
        aliases=("DANet", "DAModule", "DualAttention", "PAM_CAM", "PositionAttentionModule", "ChannelAttentionModule"),
        insert_where="on the last backbone stage (stride 8 or 16) before a segmentation head",
        notes="x + γ_p·PAM(x) + γ_c·CAM(x), one shared residual, γ starting at 0 as in the paper (identity init "
              "keeps them 0). The paper's 3×3 conv–BN–ReLU before each module and its heads are left out; the "
              "common copies fix H and W at construction, this one does not.",
    )
    reduction: PositiveInt = Field(8, le=64)
    """Query/key width = channels / reduction (8 in the paper)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        i, n = max(1, c // self.reduction), h * w
        return b * n * c * (2 * i + c) + b * n * n * (i + c) + 2 * b * c * c * n

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return DualAttention(c, max(1, c // self.reduction))

    def init_identity(self, module: nn.Module) -> bool:
        zero_(module.gamma_pos, module.gamma_chan)
        return True


class CrissCross(nn.Module):
    """CCNet: each pixel attends to the pixels of its row and column (itself once), ``recurrence`` times with
    shared weights; ``x + γ · out``."""

    def __init__(self, c: int, inner: int, recurrence: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, inner, 1), nn.Conv2d(c, inner, 1), nn.Conv2d(c, c, 1)
        self.recurrence, self.residual = recurrence, ResidualGamma()

    def once(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        h = x.shape[2]
        e_col = torch.einsum("bihw,bigw->bhwg", q, k)  # same column: b h w h'
        e_col = e_col.masked_fill(torch.eye(h, dtype=torch.bool, device=x.device)[:, None, :], float("-inf"))
        e_row = torch.einsum("bihw,bihv->bhwv", q, k)  # same row: b h w w'
        attn = torch.cat((e_col, e_row), -1).softmax(-1)
        a_col, a_row = attn[..., :h], attn[..., h:]
        out = torch.einsum("bhwg,bcgw->bchw", a_col, v) + torch.einsum("bhwv,bchv->bchw", a_row, v)
        return self.residual(x, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self.once(x)
        return x


@register_block
class CrissCrossSpec(GateSpec):
    """Criss-cross attention (Huang et al., CCNet), in pure PyTorch (einsum, no CUDA op): row-and-column
    attention; two recurrences give every pixel the whole image. Example: ``{kind: criss_cross}``."""

    kind: Literal["criss_cross"] = "criss_cross"
    card = BlockCard(
        "attention",
        paper=Paper("CCNet: Criss-Cross Attention for Semantic Segmentation", "ICCV", 2019,
                    "https://arxiv.org/abs/1811.11721"),
        aliases=("CCA", "CrissCrossAttention", "CCNet", "RCCA"),
        insert_where="on the last backbone stage before a segmentation head (RCCA: recurrence 2)",
        notes="Pure PyTorch: the paper's CUDA kernel is replaced by einsum; the pixel itself is counted once "
              "(masked in the column term). γ starts at 0 (identity) as in the paper.",
    )
    reduction: PositiveInt = Field(8, le=64)
    """Query/key width = channels / reduction (8 in the paper)."""
    recurrence: PositiveInt = Field(1, le=4)
    """How many times the (shared) attention runs; the paper's RCCA uses 2."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        i = max(1, c // self.reduction)
        once = b * h * w * c * (2 * i + c) + b * h * w * (h + w) * (i + c)
        return self.recurrence * once

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return CrissCross(c, max(1, c // self.reduction), self.recurrence)

    def init_identity(self, module: nn.Module) -> bool:
        zero_(module.residual)
        return True


class DoubleAttention(nn.Module):
    """A²: gather global descriptors (features A pooled by attention maps B), distribute them to every position
    (by attention vectors V over the descriptors), project back and add."""

    def __init__(self, c: int, cm: int, cn: int) -> None:
        super().__init__()
        self.a, self.b, self.v = nn.Conv2d(c, cm, 1), nn.Conv2d(c, cn, 1), nn.Conv2d(c, cn, 1)
        self.proj = nn.Conv2d(cm, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        feats = self.a(x).flatten(2)  # b m n
        gather = F.softmax(self.b(x).flatten(2), -1)  # b k n: each map sums to 1 over space
        descriptors = feats @ gather.transpose(1, 2)  # b m k
        distribute = F.softmax(self.v(x).flatten(2), 1)  # b k n: each position's weights over the k descriptors
        z = (descriptors @ distribute).reshape(b, -1, h, w)  # b m h w
        return x + self.proj(z)


@register_block
class DoubleAttnSpec(GateSpec):
    """Double attention (Chen et al., A²-Nets): second-order attention pooling gathers k global descriptors,
    a second attention distributes them back to every position. Example: ``{kind: double_attn}``."""

    kind: Literal["double_attn"] = "double_attn"
    card = BlockCard(
        "attention",
        paper=Paper("A²-Nets: Double Attention Networks", "NeurIPS", 2018, "https://arxiv.org/abs/1810.11579"),
        aliases=("A2", "A2Net", "A2Nets", "DoubleAttention", "DoubleAttentionLayer"),
        insert_where="in a few residual units of res3/res4, added to the unit's output",
        notes="Identity init zeroes the last 1×1 projection (the block adds its output to the input).",
    )
    reduction: PositiveInt = Field(4, le=64)
    """Width of the descriptors (m) and their count (n) = channels / reduction."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        m = max(1, c // self.reduction)
        return b * h * w * (3 * c * m + 2 * m * m + m * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        m = max(1, c // self.reduction)
        return DoubleAttention(c, m, m)

    def init_identity(self, module: nn.Module) -> bool:
        zero_(module.proj)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
