"""ConvNeXt block: 7×7 depthwise conv → LayerNorm → MLP (4×, GELU) → layer scale, + stochastic-depth residual.

The MLP runs channels-last (two linears over `b h w c`), as in torchvision; children are named as
torchvision's (`block.0` the depthwise conv, `block.2` the norm, `block.3`/`block.5` the linears,
`layer_scale`), so a torchvision ConvNeXt's state_dict loads by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..registry import register_block
from .efficientnet import StochasticDepth
from .ops import conv_macs

__all__ = ["ConvNeXtBlockSpec", "ConvNeXtBlock", "Permute"]


class Permute(nn.Module):
    """``x.permute(*dims)`` as a module (between `b c h w` and `b h w c` inside a block)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class ConvNeXtBlock(nn.Module):
    """``x + drop(layer_scale × block(x))``; ``layer_scale`` is a (c, 1, 1) parameter."""

    def __init__(self, dim: int, kernel: int, hidden: int, scale: float, eps: float, drop_path: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim),  # depthwise: mixes space only
            Permute((0, 2, 3, 1)),                                         # b c h w -> b h w c
            nn.LayerNorm(dim, eps=eps),
            nn.Linear(dim, hidden),                                        # the MLP mixes channels only
            nn.GELU(),
            nn.Linear(hidden, dim),
            Permute((0, 3, 1, 2)),                                         # b h w c -> b c h w
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), scale))
        self.stochastic_depth = StochasticDepth(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


@register_block
class ConvNeXtBlockSpec(BlockSpec):
    """ConvNeXt block (shape-keeping): depthwise k×k conv, LayerNorm, MLP, layer scale, residual."""

    kind: Literal["convnext_block"] = "convnext_block"
    card = BlockCard(
        "block",
        paper=Paper("A ConvNet for the 2020s", "CVPR", 2022, "https://arxiv.org/abs/2201.03545"),
        aliases=("ConvNeXtBlock", "CNBlock"),
        insert_where="stacked in ConvNeXt stages; anywhere a shape-keeping block fits (starts as identity "
                     "with layer scale 0)")
    kernel_size: PositiveInt = 7
    """Kernel of the depthwise conv (odd)."""
    mlp_ratio: PositiveFloat = 4.0
    """MLP hidden width = int(channels × mlp_ratio)."""
    layer_scale: float = Field(1e-6, ge=0.0)
    """Initial value of the per-channel layer scale (0 makes the block start as the identity)."""
    norm_eps: PositiveFloat = Field(1e-6, le=0.1)
    """LayerNorm epsilon."""
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth of the residual branch (training only); usually set by the network's `drop_path_rate`."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        hidden = int(c * self.mlp_ratio)
        return conv_macs((b, c, h, w), 1, (self.kernel_size,) * 2) + 2 * b * h * w * c * hidden

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return ConvNeXtBlock(c, self.kernel_size, int(c * self.mlp_ratio), self.layer_scale, self.norm_eps,
                             self.drop_path)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            module.layer_scale.zero_()
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"kernel_size": 3, "layer_scale": 0.1}, [[(2, 8, 5, 5)], [(1, 8, 4, 7)]]
