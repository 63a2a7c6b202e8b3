"""MLP token mixers on `b c h w` maps: Vision Permutator's weighted permute-MLP, S2-MLPv2's spatial-shift
attention and gMLP's spatial gating unit.

ViP and gMLP mix along H, W (or all H·W tokens) with weights whose size depends on the map, so their specs
state the map size (`size`) and a built module runs at that size only; S2-MLP shifts, so it takes any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...errors import ShapeError, fmt_shape
from ...registry import register_block
from ._mixer_base import KeepShapeSpec, zero_module

Size = tuple[Annotated[int, Field(ge=1, le=256)], Annotated[int, Field(ge=1, le=256)]]
"""A map size (H, W) that a block's weights are built for."""

__all__ = ["ViPSpec", "WeightedPermuteMLP", "S2MLPSpec", "SpatialShiftAttention", "GMLPSpec", "GMLPBlock"]


class _FixedSizeSpec(KeepShapeSpec):
    """A block whose weights span the H×W map: the spec names the size and refuses any other."""

    size: Size
    map_size_fields = ("size",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        b, c, h, w = self.check_input(in_shapes)
        if (h, w) != tuple(self.size):
            raise ShapeError(f"'{self.kind}' mixes across the map with weights built for {self.size[0]}×"
                             f"{self.size[1]}; the input is {h}×{w}", in_shapes=in_shapes,
                             expected=f"H×W = {self.size[0]}×{self.size[1]}", found=fmt_shape(in_shapes[0]),
                             hint=f"set size: [{h}, {w}]")
        return tuple(in_shapes[0])


class WeightedPermuteMLP(nn.Module):
    """Three branches on `b h w c`: a linear along channels (c), along H (h) and along W (w), where the H and
    W branches mix a position axis together with one channel segment; a small MLP on their pooled sum gives
    softmax weights that mix the branches, per channel; `proj` at the end."""

    def __init__(self, c: int, h: int, w: int, segments: int, bias: bool) -> None:
        super().__init__()
        seg = c // segments
        self.segments = segments
        self.mlp_c = nn.Linear(c, c, bias=bias)
        self.mlp_h = nn.Linear(h * seg, h * seg, bias=bias)
        self.mlp_w = nn.Linear(w * seg, w * seg, bias=bias)
        self.reweight = nn.Sequential(nn.Linear(c, c // 4), nn.GELU(), nn.Linear(c // 4, 3 * c))
        self.proj = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.segments
        x = rearrange(x, "b c h w -> b h w c")
        along_h = rearrange(x, "b h w (g s) -> b g w (h s)", g=g)
        along_h = rearrange(self.mlp_h(along_h), "b g w (h s) -> b h w (g s)", h=h)
        along_w = rearrange(x, "b h w (g s) -> b g h (w s)", g=g)
        along_w = rearrange(self.mlp_w(along_w), "b g h (w s) -> b h w (g s)", w=w)
        along_c = self.mlp_c(x)
        pooled = (along_h + along_w + along_c).mean(dim=(1, 2))  # b c
        weights = rearrange(self.reweight(pooled), "b (c three) -> three b 1 1 c", three=3).softmax(dim=0)
        out = along_h * weights[0] + along_w * weights[1] + along_c * weights[2]  # h, w, c: the paper's order
        return rearrange(self.proj(out), "b h w c -> b c h w")


@register_block
class ViPSpec(_FixedSizeSpec):
    """Weighted Permute-MLP (Vision Permutator): linear mixing along H, W and C, reweighted per channel.

    Three branches recombined with learnt per-channel softmax weights (Hou et al.). Example:
    ``{kind: vip, segments: 8, size: [8, 8]}``."""

    kind: Literal["vip"] = "vip"
    segments: PositiveInt = Field(8, le=512)
    """Number of channel segments (ViP's segment_dim); the channels must divide by it."""
    bias: bool = False
    """Biases in the three branch linears (ViP's qkv_bias)."""
    size: Size = (8, 8)
    """The map size (H, W) the H and W linears are built for; the paper has H = W = segments."""

    card = BlockCard(
        category="token_mixer",
        paper=Paper("Vision Permutator: A Permutable MLP-Like Architecture for Visual Recognition", "TPAMI", 2022,
                    "https://arxiv.org/abs/2106.12368"),
        aliases=("ViP", "WeightedPermuteMLP", "Permute-MLP", "VisionPermutator"),
        size_rule="fixed:8x8",
        channel_rule="multiple_of:segments",
        insert_where="as the token mixer of an MLP block at a fixed resolution (pre-norm, residual)",
        notes="Size: fixed to the `size` field (8×8 by default): the H and W linears span the map; at H = W = "
              "segments they are the paper's Linear(C, C). Channels: also at least 4. The popular fightingcv "
              "WeightedPermuteMLP mixes the branches in the wrong order (c·a[0] + w·a[1] + h·a[2] where the "
              "paper has h·a[0] + w·a[1] + c·a[2]), so official "
              "weights load but compute something else; this block follows the paper (the parity test pins the "
              "swap). No residual inside: identity init is the stitcher's zero-gated residual.",
    )

    def channel_divisor(self) -> int:
        return self.segments

    def min_channels(self) -> int:
        return 4

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        seg = c // self.segments
        branches = h * w * c * c + self.segments * w * (h * seg) ** 2 + self.segments * h * (w * seg) ** 2
        reweight = c * (c // 4) + (c // 4) * 3 * c
        return b * (branches + reweight + h * w * c * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return WeightedPermuteMLP(c, *self.size, self.segments, self.bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 8, 8)]]  # fixed size: no odd one


def _shift(x: torch.Tensor, axes: tuple[int, int, int, int]) -> torch.Tensor:
    """Shift four channel groups of `b h w c` by one pixel, out of place; border pixels keep their value.

    ``axes[i]`` is (axis, direction) encoded as 1/-1 for H down/up and 2/-2 for W right/left."""
    c = x.shape[-1]
    bounds = [0, c // 4, c // 2, 3 * c // 4, c]
    parts = []
    for i, code in enumerate(axes):
        part = x[..., bounds[i]:bounds[i + 1]]
        dim, n = abs(code), part.shape[abs(code)]
        if code > 0:  # forward: index j takes j-1; the first row keeps its own value
            part = torch.cat([part.narrow(dim, 0, 1), part.narrow(dim, 0, n - 1)], dim=dim)
        else:
            part = torch.cat([part.narrow(dim, 1, n - 1), part.narrow(dim, n - 1, 1)], dim=dim)
        parts.append(part)
    return torch.cat(parts, dim=-1)


class SpatialShiftAttention(nn.Module):
    """S2-MLPv2's mixer: expand to 3c, shift two thirds with two different four-direction patterns, keep one
    third, fuse the three by split attention (softmax over branches per channel), project back."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.mlp1 = nn.Linear(c, 3 * c)
        self.attn_fc1 = nn.Linear(c, c, bias=False)
        self.attn_fc2 = nn.Linear(c, 3 * c, bias=False)
        self.mlp2 = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp1(rearrange(x, "b c h w -> b h w c"))
        first, second, third = x.chunk(3, dim=-1)
        branches = torch.stack([_shift(first, (1, -1, 2, -2)), _shift(second, (2, -2, 1, -1)), third], dim=1)
        pooled = branches.sum(dim=(1, 2, 3))  # b c: summed over branches and positions, as in the paper
        weights = rearrange(self.attn_fc2(F.gelu(self.attn_fc1(pooled))), "b (k c) -> b k 1 1 c", k=3)
        out = (weights.softmax(dim=1) * branches).sum(dim=1)
        return rearrange(self.mlp2(out), "b h w c -> b c h w")


@register_block
class S2MLPSpec(KeepShapeSpec):
    """Spatial-shift MLP mixer (S2-MLPv2): one-pixel shifts of channel groups fused by split attention.

    Channel expansion, two four-direction shift patterns and an unshifted branch, weighted per channel (Yu et
    al.). Example: ``{kind: s2mlp}``."""

    kind: Literal["s2mlp"] = "s2mlp"

    card = BlockCard(
        category="token_mixer",
        paper=Paper("S2-MLPv2: Improved Spatial-Shift MLP Architecture for Vision", "arXiv", 2021,
                    "https://arxiv.org/abs/2108.01072"),
        aliases=("S2Attention", "S2-MLP", "S2MLPv2", "SpatialShift"),
        insert_where="as the token mixer of an MLP block, or after a backbone stage",
        notes="fightingcv's S2Attention has two bugs: SplitAttention is built for 512 channels whatever the "
              "input (any other width fails), and its in-place shifts copy between overlapping views, which on "
              "CPU smears the first row/column over the map instead of shifting by one; the shifts here are out "
              "of place. Same weights otherwise (parity test). No residual: the stitcher gates it.",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return b * (h * w * c * 3 * c + c * c + c * 3 * c + h * w * c * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SpatialShiftAttention(in_shapes[0][1])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class GMLPBlock(nn.Module):
    """gMLP block over the H·W tokens: norm → channel expansion + GELU → split; one half normalised and mixed
    across tokens (the spatial gating unit, a token-by-token projection starting at weight 0, bias 1) gates the
    other half → channel projection → residual."""

    def __init__(self, c: int, hidden: int, tokens: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.fc1 = nn.Linear(c, 2 * hidden)
        self.gate_norm = nn.LayerNorm(hidden)
        self.spatial = nn.Conv1d(tokens, tokens, 1)  # a linear across tokens: tokens are its channels
        self.fc2 = nn.Linear(hidden, c)
        with torch.no_grad():
            self.spatial.weight.zero_()
            self.spatial.bias.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t = rearrange(x, "b c h w -> b (h w) c")
        kept, gate = F.gelu(self.fc1(self.norm(t))).chunk(2, dim=-1)
        t = t + self.fc2(kept * self.spatial(self.gate_norm(gate)))
        return rearrange(t, "b (h w) c -> b c h w", h=h, w=w)


@register_block
class GMLPSpec(_FixedSizeSpec):
    """gMLP block: an MLP whose hidden half is gated by a projection across all H·W positions.

    The spatial gating unit of Liu et al. (Pay Attention to MLPs), on a b c h w map. Example:
    ``{kind: gmlp, ffn_ratio: 3, size: [14, 14]}``."""

    kind: Literal["gmlp"] = "gmlp"
    ffn_ratio: PositiveFloat = Field(3.0, le=16)
    """Width of each half of the expansion, as a multiple of the channels (d_ffn / d_model; 6 in the paper
    counts both halves)."""
    size: Size = (14, 14)
    """The map size (H, W) the token-by-token spatial projection is built for (the paper: 14×14 patches)."""

    card = BlockCard(
        category="token_mixer",
        paper=Paper("Pay Attention to MLPs", "NeurIPS", 2021, "https://arxiv.org/abs/2105.08050"),
        aliases=("gMLP", "SpatialGatingUnit", "SGU"),
        size_rule="area:14x14",
        insert_where="as a whole block at a fixed resolution, e.g. on the last backbone stage",
        notes="Takes b c h w and treats the H·W positions as tokens; the spatial projection is H·W × H·W, "
              "built for the `size` field (14×14 by default): the module runs at any map of that many "
              "positions (7×28 too; check-module: h·w = 196), the spec asks for `size` to be the map. Same "
              "weights as "
              "fightingcv's gMLP layer (parity test). Identity init zeroes the output projection.",
    )

    def hidden(self, c: int) -> int:
        """Width of each half of the channel expansion."""
        return max(1, int(self.ffn_ratio * c))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        n, f = h * w, self.hidden(c)
        return b * (n * c * 2 * f + n * n * f + n * f * c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return GMLPBlock(c, self.hidden(c), self.size[0] * self.size[1])

    def init_identity(self, module: nn.Module) -> bool:
        zero_module(module.fc2)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"ffn_ratio": 2}, [[(2, 16, 14, 14)], [(1, 16, 14, 14)]]  # fixed size: no odd one
