"""Shared by the token-mixer and spatial-context attention families: a `b c h w` → `b c h w` spec base with
named channel/size divisibility checks, and the small helpers their modules reuse.

(A leading underscore keeps this file out of the package's auto-import; the family files import it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from pydantic import AfterValidator, Field
from torch import nn

from ...blockspec import BlockSpec, Shape
from ...errors import ShapeError, fmt_shape

__all__ = ["KeepShapeSpec", "OddKernel", "ChannelScale", "ChannelLayerNorm", "gate_to_one", "zero_module"]


def _must_be_odd(k: int) -> int:
    if k % 2 == 0:
        raise ValueError(f"kernel {k} is even; an odd kernel keeps H×W with symmetric padding")
    return k


OddKernel = Annotated[int, Field(ge=1, le=63), AfterValidator(_must_be_odd)]
"""An odd kernel size (1–63), so 'same' padding is symmetric."""


class KeepShapeSpec(BlockSpec):
    """A block whose output has the shape of its `b c h w` input; subclasses name what must divide what."""

    def channel_divisor(self) -> int:
        """The channel count must be a multiple of this (heads, groups, segments…)."""
        return 1

    def size_multiple(self) -> int:
        """H and W must be multiples of this (window, region grid, block size…)."""
        return 1

    def min_channels(self) -> int:
        """The smallest channel count the block can be built for."""
        return 1

    def check_input(self, in_shapes: Sequence[Shape], sizes: bool = True) -> tuple[int, int, int, int]:
        """Rank, channel and (unless ``sizes`` is False: at build, where H×W does not shape the weights) size
        checks with a located message; returns ``(b, c, h, w)``."""
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        d, m, lo = self.channel_divisor(), self.size_multiple(), self.min_channels()
        if c % d or c < lo:
            raise ShapeError(f"'{self.kind}' cannot split {c} channels", in_shapes=in_shapes,
                             expected=f"channels a multiple of {d}" + (f" and at least {lo}" if lo > 1 else ""),
                             found=fmt_shape(in_shapes[0]), hint="change heads/groups, or the width before this block")
        if sizes and (h % m or w % m):
            raise ShapeError(f"'{self.kind}' tiles the map into {m}×{m} windows; {h}×{w} does not tile",
                             in_shapes=in_shapes, expected=f"H and W multiples of {m}", found=fmt_shape(in_shapes[0]),
                             hint="resize the input, or change the window/region field")
        return b, c, h, w

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.check_input(in_shapes)
        return tuple(in_shapes[0])


class ChannelScale(nn.Module):
    """A learnt per-channel scale of a `b c h w` tensor (a layer scale); a module of its own so that it sits
    in the state dict where it acts, as in timm."""

    def __init__(self, c: int, value: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((c,), float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(-1, 1, 1)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel of a `b c h w` tensor."""

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@torch.no_grad()
def gate_to_one(layer: nn.Module) -> None:
    """Make a conv/linear output exactly 1 whatever its input (weight 0, bias 1): a multiplicative gate that
    lets the input through unchanged.

    >>> conv = nn.Conv2d(4, 4, 1); gate_to_one(conv); conv(torch.randn(1, 4, 2, 2)).unique().tolist()
    [1.0]
    """
    layer.weight.zero_()
    layer.bias.fill_(1.0)


@torch.no_grad()
def zero_module(*modules: nn.Module | nn.Parameter) -> None:
    """Zero every parameter of these modules (or these parameters) in place: a residual branch that adds 0.

    >>> lin = nn.Linear(3, 3); zero_module(lin); lin(torch.ones(3)).abs().sum().item()
    0.0
    """
    for m in modules:
        for p in ([m] if isinstance(m, nn.Parameter) else m.parameters()):
            p.zero_()
