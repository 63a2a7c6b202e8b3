"""From images to tokens: patch embedding, then a class token and a learned position embedding (ViT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from einops import rearrange, repeat
from pydantic import Field, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape, TensorInfo
from ..errors import ShapeError, fmt_shape
from ..registry import register_block
from .layers import get_norm
from .ops import conv_macs

__all__ = ["PatchEmbedSpec", "PatchEmbed", "PosEmbedSpec", "PosEmbed"]


class PatchEmbed(nn.Module):
    """A `patch × patch` conv with stride `patch` (`proj`), then `b c h w -> b (h w) c`."""

    def __init__(self, in_channels: int, dim: int, patch: int, norm: nn.Module) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(rearrange(self.proj(x), "b c h w -> b (h w) c"))


@register_block
class PatchEmbedSpec(BlockSpec):
    """Split an image into patches and embed each one: `b c h w` → `b n c` on a (h/p)×(w/p) grid."""

    kind: Literal["patch_embed"] = "patch_embed"
    card = BlockCard(
        "stem",
        paper=Paper("An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
                    "ICLR", 2021, "https://arxiv.org/abs/2010.11929"),
        aliases=("PatchEmbed",),
        size_rule="min:patch_size",
        insert_where="first, on the image",
        notes="The module runs at any size of at least one patch and drops the remainder; with the default "
              "strict: true the spec also refuses sizes that are not multiples of patch_size.",
    )
    out_channels: PositiveInt
    """Embedding width (768 for ViT-B)."""
    patch_size: PositiveInt = 16
    """Patch side in pixels."""
    norm: Literal["layernorm", "none"] = "none"
    """Norm on the tokens."""
    strict: bool = True
    """Refuse sizes that are not multiples of patch_size (instead of dropping the remainder)."""

    channel_fields = ("out_channels",)

    def out_layout(self, in_layout: str) -> str:
        return "b n c"

    def _grid(self, x: Shape) -> tuple[int, int]:
        p = self.patch_size
        if self.strict and (x[2] % p or x[3] % p):
            raise ShapeError(f"input {x[2]}×{x[3]} is not a multiple of patch_size {p}", in_shapes=[x],
                             expected=f"h and w multiples of {p}", found=fmt_shape(x),
                             hint=f"use an input like {max(p, x[2] // p * p)}×{max(p, x[3] // p * p)}, "
                                  "or set strict: false to drop the remainder")
        if x[2] < p or x[3] < p:
            raise ShapeError(f"input {x[2]}×{x[3]} is smaller than one patch ({p})", in_shapes=[x])
        return x[2] // p, x[3] // p

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        gh, gw = self._grid(in_shapes[0])
        return (in_shapes[0][0], gh * gw, self.out_channels)

    def out_tokens(self, inputs: Sequence[TensorInfo], out_shape: Shape) -> tuple[tuple[int, int] | None, int]:
        return self._grid(inputs[0].shape), 0

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        gh, gw = self._grid(x)
        return conv_macs((x[0], self.out_channels, gh, gw), x[1], (self.patch_size,) * 2)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        norm = get_norm(self.norm, self.out_channels, "b n c")
        return PatchEmbed(in_shapes[0][1], self.out_channels, self.patch_size, norm)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        # strict: false, so the spec admits what the module runs (any size ≥ one patch; the card's rule)
        return {"out_channels": 16, "patch_size": 4, "strict": False}, [[(2, 3, 16, 16)], [(1, 3, 9, 13)]]


class PosEmbed(nn.Module):
    """Prepend `cls_token` (optional) and add the learned `pos_embed`, as timm's ViT names them."""

    def __init__(self, tokens: int, dim: int, class_token: bool, dropout: float) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        self.pos_embed = nn.Parameter(torch.empty(1, tokens + int(class_token), dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        self.pos_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cls_token is not None:
            x = torch.cat([repeat(self.cls_token, "1 1 c -> b 1 c", b=x.shape[0]), x], dim=1)
        return self.pos_drop(x + self.pos_embed)


@register_block
class PosEmbedSpec(BlockSpec):
    """Class token (optional) + learned position embedding on tokens; fixes the token count it was built for."""

    kind: Literal["pos_embed"] = "pos_embed"
    card = BlockCard("stem", aliases=("PosEmbed",), insert_where="right after the patch embedding")
    class_token: bool = True
    """Prepend a learned class token (read out later by `classifier` with `pool: token`)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout after adding the position embedding."""

    in_layouts = ("b n c",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 3, "b n c")
        b, n, c = in_shapes[0]
        return (b, n + int(self.class_token), c)

    def out_tokens(self, inputs: Sequence[TensorInfo], out_shape: Shape) -> tuple[tuple[int, int] | None, int]:
        return inputs[0].grid, inputs[0].prefix + int(self.class_token)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        _, n, c = in_shapes[0]
        return PosEmbed(n, c, self.class_token, self.dropout)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8)], [(1, 4, 8)]]
