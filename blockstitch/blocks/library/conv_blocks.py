"""Shape-keeping conv blocks from efficient-network papers: the StarNet block ("star operation", an
element-wise product of two branches), the ParNet block (RepVGG-style branches with skip-squeeze-excitation)
and the FasterNet block (partial conv + pointwise MLP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..conv import ConvNormAct
from ..layers import ActName, get_act
from ._parts import SameShapeSpec, Tally, cna
from .conv_light import PartialConv

__all__ = ["StarBlock", "ParNetBlock", "FasterNetBlock", "StarBlockSpec", "ParNetBlockSpec", "FasterNetBlockSpec"]


class StarBlock(nn.Module):
    """``x + dw2(g(act(f1(y)) * f2(y)))`` with ``y = dw(x)``: the star operation maps to a high implicit width."""

    def __init__(self, c: int, ratio: int, k: int, act: str) -> None:
        super().__init__()

        def conv(cin: int, cout: int, kernel: int, groups: int = 1, bn: bool = False) -> nn.Module:
            # biased convs, BN or not, as the paper's code has them (so its weights load by name)
            layer = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups)
            return ConvNormAct(layer, nn.BatchNorm2d(cout) if bn else None, None)

        self.dwconv = conv(c, c, k, c, bn=True)
        self.f1 = conv(c, ratio * c, 1)
        self.f2 = conv(c, ratio * c, 1)
        self.g = conv(ratio * c, c, 1, bn=True)
        self.dwconv2 = conv(c, c, k, c)
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x)
        y = self.act(self.f1(y)) * self.f2(y)  # the "star": an element-wise product of two linear maps
        return x + self.dwconv2(self.g(y))


@register_block
class StarBlockSpec(SameShapeSpec):
    """StarNet block (Ma et al., CVPR 2024): depthwise conv, two 1×1 expansions multiplied element-wise (one
    through ReLU6), a 1×1 back, another depthwise conv, and a residual."""

    kind: Literal["star_block"] = "star_block"
    mlp_ratio: PositiveInt = Field(3, le=8)
    """Width of the two expansions, as a multiple of the channels."""
    kernel_size: Literal[3, 5, 7, 9] = 7
    """Kernel of both depthwise convs."""
    act: ActName = "relu6"
    """Activation on the first branch before the product."""

    card = BlockCard(
        category="block",
        paper=Paper("Rewrite the Stars", "CVPR", 2024, "https://arxiv.org/abs/2403.19967"),
        aliases=("StarBlock", "StarNet", "Star_Block"),
        insert_where="replace a residual block of a light backbone, or the bottleneck of C2f (C2f-Star)",
        notes="No drop-path (add it in training recipes). Convs keep their bias before BN, as the paper's code; "
              "equal to timm's starnet Block by name (tests/test_library_parity.py). Identity init zeroes the "
              "last depthwise conv, so module(x) == x exactly.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        c, t = x[1], Tally()
        t.conv(x, c, self.kernel_size, g=c)
        y = t.conv(x, self.mlp_ratio * c, 1)
        t.conv(x, self.mlp_ratio * c, 1)
        t.conv(t.conv(y, c, 1), c, self.kernel_size, g=c)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return StarBlock(in_shapes[0][1], self.mlp_ratio, self.kernel_size, self.act)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            module.dwconv2.conv.weight.zero_()
            module.dwconv2.conv.bias.zero_()
        return True


class ParNetBlock(nn.Module):
    """``act(bn(conv3×3(x)) + bn(conv1×1(x)) + sse(x))``, where ``sse(x) = bn(x) · σ(conv1×1(gap(bn(x))))``."""

    def __init__(self, c: int, act: str) -> None:
        super().__init__()
        self.conv3 = cna(c, c, 3, act="none")
        self.conv1 = cna(c, c, 1, act="none")
        self.sse_bn = nn.BatchNorm2d(c)
        self.sse_fc = nn.Conv2d(c, c, 1)
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.sse_bn(x)
        sse = skip * torch.sigmoid(self.sse_fc(F.adaptive_avg_pool2d(skip, 1)))
        return self.act(self.conv3(x) + self.conv1(x) + sse)


@register_block
class ParNetBlockSpec(SameShapeSpec):
    """ParNet block (Goyal et al., NeurIPS 2022, "Non-deep Networks"): RepVGG's 3×3 and 1×1 conv-BN branches
    with the identity branch replaced by skip-squeeze-excitation (a BN skip gated by a one-layer SE), SiLU."""

    kind: Literal["parnet_block"] = "parnet_block"
    act: ActName = "silu"
    """Activation after the sum."""

    card = BlockCard(
        category="block",
        paper=Paper("Non-deep Networks", "NeurIPS", 2022, "https://arxiv.org/abs/2110.07641"),
        aliases=("ParNetBlock", "ParNet", "RepVGG-SSE", "SSE"),
        insert_where="the parallel streams of a shallow network, or replace a RepVGG block",
        notes="In = out channels, stride 1 (ParNet's downsampling block is another block). Ends in an "
              "activation, so it is not identity-initialisable itself (the stitcher wraps it).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        t = Tally()
        t.conv(x, x[1], 3)
        t.conv(x, x[1], 1)
        t.conv((x[0], x[1], 1, 1), x[1], 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return ParNetBlock(in_shapes[0][1], self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class FasterNetBlock(nn.Module):
    """``x + γ · mlp(pconv(x))``, the MLP being 1×1 expand → BN → act → 1×1 back (γ optional)."""

    def __init__(self, c: int, n_div: int, ratio: float, layer_scale: float, act: str) -> None:
        super().__init__()
        hidden = int(c * ratio)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), get_act(act),
                                 nn.Conv2d(hidden, c, 1, bias=False))
        self.spatial_mixing = PartialConv(c, n_div, 3)
        self.layer_scale = nn.Parameter(torch.full((c,), layer_scale)) if layer_scale > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.spatial_mixing(x))
        if self.layer_scale is not None:
            y = self.layer_scale.view(1, -1, 1, 1) * y
        return x + y


@register_block
class FasterNetBlockSpec(SameShapeSpec):
    """FasterNet block (Chen et al., CVPR 2023): a partial 3×3 conv on a quarter of the channels, then a
    pointwise MLP (1×1 → BN → act → 1×1), with a residual — a T-shaped receptive field at low memory access."""

    kind: Literal["fasternet_block"] = "fasternet_block"
    n_div: PositiveInt = Field(4, le=64)
    """The partial conv sees channels // n_div channels."""
    mlp_ratio: PositiveFloat = Field(2.0, le=8)
    """Hidden width of the MLP, as a multiple of the channels."""
    layer_scale: NonNegativeFloat = 0.0
    """Initial layer scale γ (0: no layer scale, as FasterNet-T/S/M)."""
    act: ActName = "relu"
    """Activation in the MLP (FasterNet-T0–T2 use gelu)."""

    card = BlockCard(
        category="block",
        paper=Paper("Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks", "CVPR", 2023,
                    "https://arxiv.org/abs/2303.03667"),
        aliases=("FasterNetBlock", "FasterBlock", "Faster_Block", "MLPBlock", "C2f-Faster"),
        channel_rule="min:n_div",
        insert_where="replace the bottlenecks of C2f (C2f-Faster) or a residual block of a light backbone",
        notes="Equal to timm's fasternet MLPBlock parameter for parameter (tests/test_library_parity.py). No "
              "drop-path. Identity init zeroes the MLP's last conv, so module(x) == x exactly.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        part, hidden, t = c // self.n_div, int(c * self.mlp_ratio), Tally()
        t.conv((b, part, h, w), part, 3)
        t.conv(t.conv((b, c, h, w), hidden, 1), c, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        if c < self.n_div:
            raise ShapeError(f"'fasternet_block' needs at least n_div={self.n_div} channels", found=str(c),
                             in_shapes=in_shapes)
        return FasterNetBlock(c, self.n_div, self.mlp_ratio, self.layer_scale, self.act)

    def init_identity(self, module: nn.Module) -> bool:
        with torch.no_grad():
            module.mlp[3].weight.zero_()
        return True
