"""WTConv (Finder et al., ECCV 2024): a depthwise conv whose receptive field grows through a cascade of Haar
wavelet levels — each level convolves its four sub-bands with a small kernel and the inverse transform adds
the result back — in pure PyTorch (no pytorch_wavelets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._parts import SameShapeSpec, Tally
from .down import haar_dwt

__all__ = ["haar_idwt", "WTConv", "WTConvSpec"]


def haar_idwt(bands: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`~blockstitch.blocks.library.down.haar_dwt`: ``b (4 c) h' w'`` (LL, LH, HL, HH) →
    ``b c h w``, cropping the padding the forward transform added at odd sizes.

    >>> x = torch.randn(1, 8, 13, 9)
    >>> torch.allclose(haar_idwt(haar_dwt(x), 13, 9), x, atol=1e-6)
    True
    """
    ll, lh, hl, hh = bands.chunk(4, dim=1)
    b, c, hh_, ww_ = ll.shape
    out = bands.new_empty(b, c, 2 * hh_, 2 * ww_)
    out[..., 0::2, 0::2] = (ll + lh + hl + hh) / 2
    out[..., 0::2, 1::2] = (ll + lh - hl - hh) / 2
    out[..., 1::2, 0::2] = (ll - lh + hl - hh) / 2
    out[..., 1::2, 1::2] = (ll - lh - hl + hh) / 2
    return out[..., :h, :w]


class WTConv(nn.Module):
    """``base_scale · dwconv(x) + Z``, where Z comes back, level by level, from depthwise convs (each with its
    own scale) of the Haar sub-bands of ever coarser low-pass maps."""

    def __init__(self, c: int, k: int, levels: int) -> None:
        super().__init__()
        self.base = nn.Conv2d(c, c, k, 1, k // 2, groups=c)
        self.base_scale = nn.Parameter(torch.ones(1, c, 1, 1))
        self.wavelet_convs = nn.ModuleList(nn.Conv2d(4 * c, 4 * c, k, 1, k // 2, groups=4 * c, bias=False)
                                           for _ in range(levels))
        self.wavelet_scales = nn.Parameter(torch.full((levels, 4 * c, 1, 1), 0.1))  # 4-d: channels_last works

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, sizes, convolved = x, [], []
        for conv, scale in zip(self.wavelet_convs, self.wavelet_scales):
            sizes.append(low.shape[-2:])
            bands = haar_dwt(low)
            low = bands[:, : x.shape[1]]  # LL feeds the next level
            convolved.append(conv(bands) * scale.unsqueeze(0))
        z = torch.zeros_like(low)
        for bands, (h, w) in zip(reversed(convolved), reversed(sizes)):
            ll, rest = bands[:, : x.shape[1]], bands[:, x.shape[1]:]
            z = haar_idwt(torch.cat((ll + z, rest), 1), h, w)  # the coarser result joins this level's LL band
        return self.base(x) * self.base_scale + z


@register_block
class WTConvSpec(SameShapeSpec):
    """WTConv (Finder et al., ECCV 2024): wavelet convolution — a depthwise k×k conv plus small-kernel
    depthwise convs on the Haar sub-bands of `levels` wavelet levels, for a receptive field that grows as
    k·2^levels with only k²·4·levels extra weights per channel."""

    kind: Literal["wtconv"] = "wtconv"
    kernel_size: Literal[3, 5, 7] = 5
    """Kernel of the base conv and of every wavelet-level conv."""
    levels: PositiveInt = Field(2, le=6)
    """Number of wavelet levels."""

    card = BlockCard(
        category="conv",
        paper=Paper("Wavelet Convolutions for Large Receptive Fields", "ECCV", 2024,
                    "https://arxiv.org/abs/2407.05848"),
        aliases=("WTConv", "WTConv2d", "WaveletConv"),
        insert_where="replace the depthwise conv of a ConvNeXt/MobileNet block, or the 3×3 conv of a C2f "
                     "bottleneck",
        notes="Depthwise, shape-keeping, stride 1. Pure-PyTorch Haar; odd sizes are zero-padded before each "
              "transform and cropped after the inverse, so any size works. Identity init: the base conv "
              "becomes a Dirac kernel and the wavelet scales zero, so module(x) == x exactly.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        t = Tally()
        t.conv((b, c, h, w), c, self.kernel_size, g=c)
        for _ in range(self.levels):
            h, w = (h + 1) // 2, (w + 1) // 2
            t.conv((b, 4 * c, h, w), 4 * c, self.kernel_size, g=4 * c)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return WTConv(in_shapes[0][1], self.kernel_size, self.levels)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            nn.init.dirac_(module.base.weight, groups=module.base.groups)
            module.base.bias.zero_()
            module.base_scale.fill_(1.0)
            module.wavelet_scales.zero_()
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]

