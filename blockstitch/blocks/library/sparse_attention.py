"""Attention over a few chosen keys: deformable attention (DAT), bi-level routing attention (BiFormer) and
agent attention — each on `b c h w`, in pure PyTorch (grid_sample, topk + gather, adaptive pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..ops import attention_macs, conv_out
from ._mixer_base import ChannelLayerNorm, KeepShapeSpec, OddKernel

__all__ = ["DATSpec", "DeformableAttention", "BiFormerSpec", "BiLevelRoutingAttention", "AgentAttnSpec",
           "AgentAttention"]


def _cell_centres(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """``(h, w, 2)`` (y, x) centres of an h×w grid of cells, normalised to [−1, 1]."""
    ys = (torch.arange(h, device=like.device, dtype=like.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=like.device, dtype=like.dtype) + 0.5) / w * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


class DeformableAttention(nn.Module):
    """DAT: queries from every pixel; keys and values from the input sampled (bilinear) at a grid of reference
    points moved by offsets that a small conv net predicts from the queries, per group of channels; a
    continuous relative-position bias table is sampled at each query–key displacement."""

    def __init__(self, c: int, heads: int, groups: int, stride: int, kernel: int, offset_range: float,
                 table: tuple[int, int] | None) -> None:
        super().__init__()
        cg = c // groups
        self.heads, self.groups, self.offset_range, self.scale = heads, groups, offset_range, (c // heads) ** -0.5
        self.conv_offset = nn.Sequential(nn.Conv2d(cg, cg, kernel, stride, kernel // 2, groups=cg),
                                         ChannelLayerNorm(cg), nn.GELU(), nn.Conv2d(cg, 2, 1, bias=False))
        self.proj_q, self.proj_k, self.proj_v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))
        self.rpe_table = None if table is None else nn.Parameter(torch.randn(heads, 2 * table[0] - 1,
                                                                             2 * table[1] - 1) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.groups
        q = self.proj_q(x)
        offset = self.conv_offset(rearrange(q, "b (g c) h w -> (b g) c h w", g=g))  # (b g) 2 hk wk
        hk, wk = offset.shape[-2:]
        limit = torch.tensor([1.0 / hk, 1.0 / wk], device=x.device, dtype=x.dtype).view(1, 2, 1, 1)
        offset = rearrange(offset.tanh() * limit * self.offset_range, "bg p h w -> bg h w p")
        pos = offset + _cell_centres(hk, wk, x)  # (b g) hk wk 2, (y, x)
        sampled = F.grid_sample(rearrange(x, "b (g c) h w -> (b g) c h w", g=g), pos.flip(-1), mode="bilinear",
                                align_corners=True)
        sampled = rearrange(sampled, "(b g) c h w -> b (g c) 1 (h w)", g=g)
        k, v = (rearrange(p(sampled), "b (n d) 1 s -> b n s d", n=self.heads) for p in (self.proj_k, self.proj_v))
        q = rearrange(q, "b (n d) h w -> b n (h w) d", n=self.heads)
        attn = (q @ k.transpose(-1, -2)) * self.scale  # b n (h w) s
        if self.rpe_table is not None:
            disp = (_cell_centres(h, w, x).view(1, h * w, 1, 2) - pos.view(b * g, 1, hk * wk, 2)) * 0.5
            table = self.rpe_table.expand(b, -1, -1, -1).reshape(b * g, self.heads // g, *self.rpe_table.shape[1:])
            bias = F.grid_sample(table, disp.flip(-1), mode="bilinear", align_corners=True)  # (b g) m hw s
            attn = attn + rearrange(bias, "(b g) m q s -> b (g m) q s", g=g)
        out = rearrange(attn.softmax(dim=-1) @ v, "b n (h w) d -> b (n d) h w", h=h)
        return self.proj_out(out)


@register_block
class DATSpec(KeepShapeSpec):
    """Deformable attention (DAT): queries attend to keys sampled at learnt, data-dependent points.

    A few shared deformed points instead of all pixels, via grid_sample (Xia et al.). Example:
    ``{kind: dat, heads: 8}``."""

    kind: Literal["dat"] = "dat"
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by it."""
    groups: PositiveInt = Field(2, le=64)
    """Offset groups (each predicts its own sampling points); must divide heads."""
    stride: PositiveInt = Field(2, le=16)
    """Stride of the offset network: keys come from an ⌈H/stride⌉×⌈W/stride⌉ grid of points."""
    offset_kernel: OddKernel = 5
    """Depthwise kernel of the offset network (DAT: 9, 7, 5, 3 by stage)."""
    offset_range: PositiveFloat = Field(2.0, le=32)
    """Offsets are bounded by offset_range grid cells (tanh-scaled)."""
    rpe: bool = True
    """Add the continuous relative-position bias (a table sampled at each displacement)."""

    card = BlockCard(
        category="attention",
        paper=Paper("Vision Transformer with Deformable Attention", "CVPR", 2022, "https://arxiv.org/abs/2201.00520"),
        aliases=("DAT", "DAttention", "DAttentionBaseline", "DeformableAttention"),
        channel_rule="multiple_of:heads",
        insert_where="in the last two backbone stages (DAT) or after C2f/C3 in YOLO necks",
        notes="Pure PyTorch (F.grid_sample; its cost is not in the MACs, as the profiler does not count it). "
              "Any H×W: the bias table is sized at build and "
              "sampled in normalised coordinates, so unlike fightingcv's DAttentionBaseline (which reshapes it "
              "to the input size) it runs at other sizes; equal to it at the build size (parity test). Reference "
              "points are cell centres sampled with align_corners=True, as in the official code. No residual.",
    )

    @model_validator(mode="after")
    def _groups_divide_heads(self) -> DATSpec:
        if self.heads % self.groups:
            raise ValueError(f"groups ({self.groups}) must divide heads ({self.heads})")
        return self

    def channel_divisor(self) -> int:
        return self.heads

    def _keys(self, h: int, w: int) -> int:
        k = self.offset_kernel
        return conv_out(h, k, self.stride, k // 2) * conv_out(w, k, self.stride, k // 2)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        n, s = h * w, self._keys(h, w)
        offsets = b * s * c * (self.offset_kernel**2 + 2)
        return 2 * b * n * c * c + offsets + 2 * b * s * c * c + attention_macs(b, self.heads, n, s, c // self.heads)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        b, c, h, w = self.check_input(in_shapes, sizes=False)
        return DeformableAttention(c, self.heads, self.groups, self.stride, self.offset_kernel, self.offset_range,
                                   (h, w) if self.rpe else None)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class BiLevelRoutingAttention(nn.Module):
    """BRA: the map is cut into S×S regions; region-mean queries and keys pick, per region, the top-k most
    related regions; each token attends to the tokens of those regions only. A depthwise conv on the values
    (local context enhancement) is added before the output linear."""

    def __init__(self, c: int, heads: int, regions: int, topk: int, lce_kernel: int, auto_pad: bool = False) -> None:
        super().__init__()
        self.heads, self.regions, self.topk, self.auto_pad = heads, regions, topk, auto_pad
        self.scale, self.route_scale = (c // heads) ** -0.5, c**-0.5
        self.qkv = nn.Linear(c, 3 * c)
        self.lepe = nn.Conv2d(c, c, lce_kernel, padding=lce_kernel // 2, groups=c)
        self.wo = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.regions, -w % self.regions
        if self.auto_pad and (ph or pw):  # BiFormer's auto_pad: zeros at the bottom/right, the output cropped
            return self._attend(torch.nn.functional.pad(x, (0, pw, 0, ph)))[:, :, :h, :w]
        return self._attend(x)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.regions
        if h % s or w % s:
            raise ValueError(f"bi-level routing attention cuts the map into a {s}×{s} grid of regions; {h}×{w} "
                             f"does not divide (H and W must be multiples of {s})")
        q, k, v = self.qkv(rearrange(x, "b c h w -> b h w c")).chunk(3, dim=-1)
        lepe = self.lepe(rearrange(v, "b h w c -> b c h w"))
        q, k, v = (rearrange(t, "b (sy ry) (sx rx) c -> b (sy sx) (ry rx) c", sy=s, sx=s) for t in (q, k, v))
        # routing between regions is a hard top-k choice: no gradient flows through it (as in BiFormer), and it
        # is made in float32 so that bfloat16 runs pick the same regions
        q_r, k_r = q.detach().float().mean(2), k.detach().float().mean(2)
        affinity = (q_r * self.route_scale) @ k_r.transpose(-1, -2)  # b r r
        index = affinity.topk(self.topk, dim=-1).indices  # b r topk
        r, t = q.shape[1], q.shape[2]
        pick = index[..., None, None].expand(b, r, self.topk, t, c)
        k_sel, v_sel = (torch.gather(z[:, None].expand(b, r, r, t, c), 2, pick) for z in (k, v))
        k_sel, v_sel = (rearrange(z, "b r k t (n d) -> b r n (k t) d", n=self.heads) for z in (k_sel, v_sel))
        q = rearrange(q, "b r t (n d) -> b r n t d", n=self.heads)
        out = ((q @ k_sel.transpose(-1, -2)) * self.scale).softmax(dim=-1) @ v_sel  # b r n t d
        out = rearrange(out, "b (sy sx) n (ry rx) d -> b (n d) (sy ry) (sx rx)", sy=s, ry=h // s)
        return rearrange(self.wo(rearrange(out + lepe, "b c h w -> b h w c")), "b h w c -> b c h w")


@register_block
class BiFormerSpec(KeepShapeSpec):
    """Bi-level routing attention (BiFormer): top-k region routing, then token attention in those regions.

    Coarse region-to-region routing, fine token attention and a local-context conv (Zhu et al.). Example:
    ``{kind: biformer, regions: 7, topk: 4}``."""

    kind: Literal["biformer"] = "biformer"
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by it."""
    regions: PositiveInt = Field(7, le=64)
    """Regions per side S (an S×S region grid); H and W must be multiples of S."""
    topk: PositiveInt = Field(4, le=1024)
    """Regions each region attends to; at most S²."""
    lce_kernel: OddKernel = 5
    """Kernel of the depthwise local-context conv on the values."""
    auto_pad: bool = False
    """Zero-pad H and W up to multiples of S and crop the output (BiFormer's own `auto_pad` option; the padding
    takes part in routing and attention). A stitch turns it on where the map does not tile, and says so."""
    pad_field: ClassVar[str] = "auto_pad"

    card = BlockCard(
        category="attention",
        paper=Paper("BiFormer: Vision Transformer with Bi-Level Routing Attention", "CVPR", 2023,
                    "https://arxiv.org/abs/2303.08125"),
        aliases=("BiFormer", "BRA", "BiLevelRoutingAttention"),
        size_rule="multiple_of:regions",
        channel_rule="multiple_of:heads",
        insert_where="as the attention of backbone blocks; YOLO forks add it after the last C2f of the backbone",
        notes="Size rule: H and W multiples of the region grid S (7 by default — the paper's n_win; regions "
              "may be non-square), stated rather than padded unless auto_pad (BiFormer's own option) is on; a "
              "stitch turns it on where the map does not tile. Routing is "
              "detached (BiFormer's default) and made in float32; still, a hard top-k can pick other regions in "
              "bfloat16 than in float32 (near ties), so the two differ more than for soft attention. Token "
              "attention is scaled by head_dim^-0.5, routing by C^-0.5. "
              "No residual inside: the stitcher gates it.",
    )

    @model_validator(mode="after")
    def _topk_fits(self) -> BiFormerSpec:
        if self.topk > self.regions**2:
            raise ValueError(f"topk ({self.topk}) exceeds the {self.regions}×{self.regions} regions")
        return self

    def channel_divisor(self) -> int:
        return self.heads

    def size_multiple(self) -> int:
        return 1 if self.auto_pad else self.regions

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        h, w = h + -h % self.regions, w + -w % self.regions  # counted where it runs: on the padded map
        n, r, t = h * w, self.regions**2, (h // self.regions) * (w // self.regions)
        dense = b * n * c * (3 * c + self.lce_kernel**2 + c) + b * r * r * c
        return dense + attention_macs(b * r, self.heads, t, self.topk * t, c // self.heads)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return BiLevelRoutingAttention(c, self.heads, self.regions, self.topk, self.lce_kernel, self.auto_pad)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4, "topk": 2}, [[(2, 16, 14, 14)], [(1, 16, 7, 21)]]


class AgentAttention(nn.Module):
    """Agent attention: P² agent tokens (the queries average-pooled to P×P) first gather from all keys and
    values, then every query reads from the agents — softmax attention at linear cost; learnt agent–position
    biases (P² maps of 7×7, resized to H×W) and a depthwise conv on the values restore locality."""

    def __init__(self, c: int, heads: int, pool: int, bias: bool, bias_grid: int = 7) -> None:
        super().__init__()
        self.heads, self.pool, self.scale = heads, pool, (c // heads) ** -0.5
        self.qkv = nn.Linear(c, 3 * c, bias=bias)
        self.agent_bias = nn.Parameter(torch.randn(heads, pool * pool, bias_grid, bias_grid) * 0.02)
        self.query_bias = nn.Parameter(torch.randn(heads, pool * pool, bias_grid, bias_grid) * 0.02)
        self.dwc = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.proj = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q, k, v = self.qkv(rearrange(x, "b c h w -> b (h w) c")).chunk(3, dim=-1)
        agents = F.adaptive_avg_pool2d(rearrange(q, "b (h w) c -> b c h w", h=h), self.pool)
        agents = rearrange(agents, "b (m d) p1 p2 -> b m (p1 p2) d", m=self.heads)
        q, k, v = (rearrange(t, "b n (m d) -> b m n d", m=self.heads) for t in (q, k, v))
        to_map = dict(size=(h, w), mode="bilinear", align_corners=False)
        agent_bias = rearrange(F.interpolate(self.agent_bias, **to_map), "m a h w -> 1 m a (h w)")
        query_bias = rearrange(F.interpolate(self.query_bias, **to_map), "m a h w -> 1 m (h w) a")
        agent_v = ((agents * self.scale) @ k.transpose(-1, -2) + agent_bias).softmax(dim=-1) @ v  # b m a d
        out = ((q * self.scale) @ agents.transpose(-1, -2) + query_bias).softmax(dim=-1) @ agent_v  # b m n d
        out = rearrange(out, "b m (h w) d -> b (m d) h w", h=h)
        out = out + self.dwc(rearrange(v, "b m (h w) d -> b (m d) h w", h=h))
        return rearrange(self.proj(rearrange(out, "b c h w -> b h w c")), "b h w c -> b c h w")


@register_block
class AgentAttnSpec(KeepShapeSpec):
    """Agent attention: a few pooled agent tokens gather from all keys and broadcast to every query.

    Softmax attention's expressiveness at linear attention's cost (Han et al.). Example:
    ``{kind: agent_attn, pool: 7}``."""

    kind: Literal["agent_attn"] = "agent_attn"
    heads: PositiveInt = Field(8, le=64)
    """Attention heads; the channels must divide by it."""
    pool: PositiveInt = Field(7, le=32)
    """Agents are the queries pooled to pool×pool (49 agents by default)."""
    qkv_bias: bool = True
    """Bias on the qkv linear."""

    card = BlockCard(
        category="attention",
        paper=Paper("Agent Attention: On the Integration of Softmax and Linear Attention", "ECCV", 2024,
                    "https://arxiv.org/abs/2312.08874"),
        aliases=("AgentAttention", "AgentAttn"),
        channel_rule="multiple_of:heads",
        insert_where="in place of (window) self-attention in high-resolution stages; after C2f in YOLO necks",
        notes="Any H×W: the paper's agent biases are tied to a "
              "window size; here each head/agent has one learnt 7×7 bias map per direction (agent→key and "
              "query→agent), bilinearly resized to H×W, which folds the paper's row/column bias terms into one. "
              "No residual inside: the stitcher gates it.",
    )

    def channel_divisor(self) -> int:
        return self.heads

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check_input(in_shapes)
        n, a, d = h * w, self.pool**2, c // self.heads
        return (b * n * c * (3 * c + 9 + c) + attention_macs(b, self.heads, a, n, d)
                + attention_macs(b, self.heads, n, a, d))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check_input(in_shapes, sizes=False)[1]
        return AgentAttention(c, self.heads, self.pool, self.qkv_bias)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 4, "pool": 3}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
