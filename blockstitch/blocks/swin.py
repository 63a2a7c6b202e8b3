"""Swin Transformer: the block (window attention with relative position bias, optionally shifted) and patch
merging, both channels-last (`b h w c`) as in torchvision.

Windows. h and w are padded with zeros up to multiples of `window_size` and the padded tokens take part in
attention — torchvision's behaviour, reproduced exactly; a feature map whose sides are multiples of the
window (Swin-T at 224: 56, 28, 14, 7 with window 7) needs no padding and is the case the paper describes.
A shifted block rolls the map by half a window and masks attention between regions that were not neighbours;
where the window covers the whole (padded) side, it does not shift along that side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..errors import ShapeError
from ..registry import register_block
from .efficientnet import StochasticDepth
from .ops import attention_macs, linear_macs

__all__ = ["SwinBlockSpec", "SwinBlock", "WindowAttention", "PatchMergingSpec", "PatchMerging"]

_PAPER = Paper("Swin Transformer: Hierarchical Vision Transformer using Shifted Windows", "ICCV", 2021,
               "https://arxiv.org/abs/2103.14030")


def _padded(size: int, window: int) -> int:
    return -(-size // window) * window


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each ``window × window`` window, plus a learned bias per relative
    offset (``relative_position_bias_table``, indexed by the buffer ``relative_position_index``)."""

    def __init__(self, dim: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # offset (dy, dx) of token j from token i, both in [-(window-1), window-1], as one row of the table
        # (worked out on the CPU, then moved: on a meta build, torch's meta arange costs a second of imports)
        ys, xs = torch.meshgrid(torch.arange(window, device="cpu"), torch.arange(window, device="cpu"),
                                indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        dy, dx = ys[:, None] - ys[None, :] + window - 1, xs[:, None] - xs[None, :] + window - 1
        index = (dy * (2 * window - 1) + dx).flatten().to(self.relative_position_bias_table.device)
        self.register_buffer("relative_position_index", index)

    def _mask(self, x: torch.Tensor, hp: int, wp: int, shift: tuple[int, int]) -> torch.Tensor:
        """(windows, n, n): −100 between tokens that came from different regions before the roll."""
        ws = self.window
        region = x.new_zeros((hp, wp))
        label = 0
        for hs in (slice(0, -ws), slice(-ws, -shift[0]), slice(-shift[0], None)):
            for wsl in (slice(0, -ws), slice(-ws, -shift[1]), slice(-shift[1], None)):
                region[hs, wsl] = label
                label += 1
        region = region.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
        diff = region.unsqueeze(1) - region.unsqueeze(2)
        return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, heads = self.window, self.heads
        x = F.pad(x, (0, 0, 0, _padded(w, ws) - w, 0, _padded(h, ws) - h))  # zeros to whole windows
        hp, wp = x.shape[1], x.shape[2]
        shift = (self.shift if ws < hp else 0, self.shift if ws < wp else 0)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        nw, n = (hp // ws) * (wp // ws), ws * ws
        # b hp wp c -> (b windows) (ws ws) c
        x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nw, n, c)
        q, k, v = self.qkv(x).reshape(b * nw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))  # (b windows) heads n n
        bias = self.relative_position_bias_table[self.relative_position_index]
        attn = attn + bias.view(n, n, heads).permute(2, 0, 1).unsqueeze(0)
        if sum(shift) > 0:
            attn = attn.view(b, nw, heads, n, n) + self._mask(x, hp, wp, shift).unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        x = attn.softmax(dim=-1).matmul(v).transpose(1, 2).reshape(b * nw, n, c)
        x = self.proj(x)
        # (b windows) (ws ws) c -> b hp wp c, then undo the roll and the padding
        x = x.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


class SwinBlock(nn.Module):
    """``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``, each branch under stochastic depth."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, hidden: int, eps: float,
                 drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = WindowAttention(dim, heads, window, shift)
        self.stochastic_depth = StochasticDepth(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim),
                                 nn.Dropout(0.0))  # torchvision's MLP: `mlp.0` and `mlp.3` hold the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


@register_block
class SwinBlockSpec(BlockSpec):
    """Swin Transformer block on `b h w c`: (shifted) window attention with relative position bias, then an MLP."""

    kind: Literal["swin_block"] = "swin_block"
    card = BlockCard(
        "token_mixer", paper=_PAPER, aliases=("SwinTransformerBlock", "SwinBlock", "W-MSA", "SW-MSA"),
        size_rule="any", channel_rule="multiple_of:heads",
        insert_where="stacked in pairs (unshifted, shifted) in hierarchical stages, between patch merges",
        notes="h, w that are not multiples of window_size are zero-padded and the padding takes part in "
              "attention (torchvision's behaviour); exact windows need h, w multiples of window_size after "
              "patching — Swin-T's 224 input gives 56, 28, 14, 7")
    heads: PositiveInt
    """Attention heads (channels must divide by them)."""
    window_size: PositiveInt = Field(7, le=64)
    """Side of the square attention window, in tokens."""
    shifted: bool = False
    """Shift the windows by window_size // 2 (every second block of a stage)."""
    mlp_ratio: PositiveFloat = 4.0
    """MLP hidden width = int(channels × mlp_ratio)."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """LayerNorm epsilon."""
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth of both residual branches (training only); usually set by `drop_path_rate`."""

    in_layouts = ("b h w c",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b h w c")
        c = in_shapes[0][3]
        if c % self.heads:
            raise ShapeError(f"'swin_block': {c} channels do not divide into {self.heads} heads",
                             expected=f"channels multiple of {self.heads}", found=str(c), in_shapes=in_shapes)
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, h, w, c = self.out_shape(in_shapes)
        ws = self.window_size
        hp, wp = _padded(h, ws), _padded(w, ws)
        padded = (b, hp * wp, c)  # qkv and proj run on the padded windows
        attn = attention_macs(b * (hp // ws) * (wp // ws), self.heads, ws * ws, ws * ws, c // self.heads)
        mlp = 2 * linear_macs((b, h * w, c), int(c * self.mlp_ratio))
        return linear_macs(padded, 3 * c) + attn + linear_macs(padded, c) + mlp

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.out_shape(in_shapes)[3]
        shift = self.window_size // 2 if self.shifted else 0
        return SwinBlock(c, self.heads, self.window_size, shift, int(c * self.mlp_ratio), self.norm_eps,
                         self.drop_path)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            for layer in (module.attn.proj, module.mlp[3]):  # both residual branches end in zeros
                layer.weight.zero_()
                layer.bias.zero_()
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"heads": 2, "window_size": 3, "shifted": True}, [[(2, 6, 6, 8)], [(1, 5, 7, 8)]]


class PatchMerging(nn.Module):
    """Each 2×2 neighbourhood's four tokens concatenated (odd sides padded), ``norm``, then ``reduction`` to 2c."""

    def __init__(self, dim: int, out: int, eps: float) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, out, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # b h w c -> b h/2 w/2 4c, in the order (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


@register_block
class PatchMergingSpec(BlockSpec):
    """Swin patch merging on `b h w c`: 2×2 neighbours concatenated → LayerNorm → linear to 2× channels."""

    kind: Literal["patch_merging"] = "patch_merging"
    card = BlockCard("down", paper=_PAPER, aliases=("PatchMerging",), size_rule="any",
                     insert_where="between Swin stages (halves h and w, doubles c)",
                     notes="odd h or w are zero-padded by one row/column first, as torchvision does")
    out_channels: PositiveInt | None = None
    """Output channels; default twice the input's."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """LayerNorm epsilon."""

    in_layouts = ("b h w c",)
    channel_fields = ("out_channels",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b h w c")
        b, h, w, c = in_shapes[0]
        return (b, -(-h // 2), -(-w // 2), self.out_channels or 2 * c)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, h, w, out = self.out_shape(in_shapes)
        return linear_macs((b, h, w, 4 * in_shapes[0][3]), out)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][3]
        return PatchMerging(c, self.out_shape(in_shapes)[3], self.norm_eps)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 4, 4, 6)], [(1, 5, 3, 6)]]
