"""Multi-receptive-field pooling and dilation blocks of detection necks: SPP, SPPF and RFB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..layers import ActName, get_act
from ._parts import Tally, cna

__all__ = ["SPPFSpec", "SPPSpec", "RFBSpec"]

_SPP = Paper("Spatial Pyramid Pooling in Deep Convolutional Networks for Visual Recognition", "TPAMI", 2015,
             "https://arxiv.org/abs/1406.4729")


class SPPF(nn.Module):
    """cv1, then the same k×k max pool applied ``n`` times in a row; every stage concatenated into cv2."""

    def __init__(self, cin: int, cout: int, k: int, n: int, hidden_act: bool, act: str) -> None:
        super().__init__()
        hidden = cin // 2
        self.cv1 = cna(cin, hidden, 1, act=act if hidden_act else "none")
        self.cv2 = cna(hidden * (n + 1), cout, 1, act=act)
        self.m = nn.MaxPool2d(k, 1, k // 2)
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = [self.cv1(x)]
        for _ in range(self.n):  # pooling a pooled map widens the window: 5, 9, 13 for k=5
            pieces.append(self.m(pieces[-1]))
        return self.cv2(torch.cat(pieces, 1))


class SPP(nn.Module):
    """cv1, then parallel max pools of several kernels (stride 1, same size), concatenated into cv2."""

    def __init__(self, cin: int, cout: int, kernels: Sequence[int], act: str) -> None:
        super().__init__()
        hidden = cin // 2
        self.cv1 = cna(cin, hidden, 1, act=act)
        self.cv2 = cna(hidden * (len(kernels) + 1), cout, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [pool(x) for pool in self.m], 1))


class _PoolSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels (the hidden width is in_channels // 2, as in YOLOv5/v8)."""
    act: ActName = "silu"
    """Activation of the convs."""

    channel_fields = ("out_channels",)

    def _hidden(self, in_shapes: Sequence[Shape]) -> int:
        self.expect_rank(in_shapes, 4, "b c h w")
        if in_shapes[0][1] < 2:
            raise ShapeError(f"'{self.kind}' needs at least 2 input channels (hidden = in // 2)",
                             expected="channels ≥ 2", found=str(in_shapes[0][1]), in_shapes=in_shapes)
        return in_shapes[0][1] // 2

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self._hidden(in_shapes)
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    def _macs(self, in_shapes: Sequence[Shape], pieces: int) -> int:
        c = self._hidden(in_shapes)
        t = Tally()
        y = t.conv(in_shapes[0], c, 1)
        t.conv((y[0], c * pieces, y[2], y[3]), self.out_channels, 1)
        return t.macs

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16}, [[(2, 16, 8, 8)], [(1, 32, 13, 9)]]


@register_block
class SPPFSpec(_PoolSpec):
    """SPPF (YOLOv5): SPP's 5/9/13 max pools computed as one 5×5 pool applied three times in a row."""

    kind: Literal["sppf"] = "sppf"
    kernel_size: PositiveInt = Field(5, le=31)
    """Max-pool kernel (odd keeps the size)."""
    repeats: PositiveInt = Field(3, le=8)
    """How many times the pool is applied (Ultralytics' `n`)."""
    hidden_act: bool = True
    """Activation after cv1 (YOLOv5/v8 have it; Ultralytics ≥ 8.4 builds SPPF's cv1 without it)."""

    card = BlockCard(
        category="neck", paper=_SPP, aliases=("SPPF", "SPPFast"),
        channel_rule="min:2",
        insert_where="end of a detection backbone, before the neck (YOLOv5/v8 layer 9)",
        notes="Odd kernel_size keeps the size. Equal to ultralytics' SPPF with hidden_act=False (its current "
              "default) parameter for parameter (tests/test_library_parity.py).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return self._macs(in_shapes, self.repeats + 1)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        if self.kernel_size % 2 == 0:
            raise ShapeError("'sppf' needs an odd kernel_size to keep the size", found=str(self.kernel_size))
        return SPPF(in_shapes[0][1], self.out_channels, self.kernel_size, self.repeats, self.hidden_act, self.act)


@register_block
class SPPSpec(_PoolSpec):
    """Spatial pyramid pooling as YOLOv3/v5 use it: parallel stride-1 max pools (5, 9, 13) concatenated."""

    kind: Literal["spp"] = "spp"
    kernels: tuple[PositiveInt, ...] = Field((5, 9, 13), min_length=1, max_length=8)
    """Odd max-pool kernels."""

    card = BlockCard(
        category="neck", paper=_SPP, aliases=("SPP", "SPPNet"),
        channel_rule="min:2",
        insert_where="end of a detection backbone, before the neck",
        notes="The YOLO form (stride-1 pools, same size), not the paper's fixed-bin pooling to a vector. "
              "Equal to ultralytics' SPP parameter for parameter.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return self._macs(in_shapes, len(self.kernels) + 1)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        if any(k % 2 == 0 for k in self.kernels):
            raise ShapeError("'spp' needs odd kernels to keep the size", found=str(self.kernels))
        return SPP(in_shapes[0][1], self.out_channels, self.kernels, self.act)


class RFB(nn.Module):
    """Branches of 1×1 → (i 3×3 convs) → 3×3 at dilation d_i, concatenated, a linear 1×1, a scaled residual."""

    def __init__(self, cin: int, cout: int, hidden: int, dilations: Sequence[int], scale: float, act: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        for i, d in enumerate(dilations):
            layers = [cna(cin, hidden, 1, act=act)] + [cna(hidden, hidden, 3, act=act) for _ in range(i)]
            layers.append(cna(hidden, hidden, 3, d=d, act="none"))
            self.branches.append(nn.Sequential(*layers))
        self.fuse_conv = cna(hidden * len(dilations), cout, 1, act="none")
        self.shortcut = nn.Identity() if cin == cout else cna(cin, cout, 1, act="none")
        self.scale = scale
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fuse_conv(torch.cat([branch(x) for branch in self.branches], 1))
        return self.act(self.scale * y + self.shortcut(x))


@register_block
class RFBSpec(BlockSpec):
    """Receptive Field Block (Liu et al., ECCV 2018): branches of growing kernel (1, 3, 5 as stacked 3×3) each
    ending in a 3×3 conv dilated 1, 3, 5 — like population receptive fields — fused and added to a shortcut."""

    kind: Literal["rfb"] = "rfb"
    out_channels: PositiveInt
    """Output channels."""
    reduction: PositiveInt = Field(4, le=64)
    """Branch width = max(in_channels // reduction, 1)."""
    dilations: tuple[PositiveInt, ...] = Field((1, 3, 5), min_length=1, max_length=6)
    """Dilation of each branch's last 3×3 conv; branch i has i plain 3×3 convs before it."""
    scale: PositiveFloat = 0.1
    """Scale of the fused branches before the shortcut sum (the paper's code uses 0.1)."""
    act: ActName = "relu"
    """Activation inside the branches and after the sum."""

    channel_fields = ("out_channels",)

    card = BlockCard(
        category="neck",
        paper=Paper("Receptive Field Block Net for Accurate and Fast Object Detection", "ECCV", 2018,
                    "https://arxiv.org/abs/1711.07767"),
        aliases=("RFB", "BasicRFB", "RFBNet"),
        insert_where="on the backbone features before a detection head or in the neck (RFBNet, YOLO necks)",
        notes="Branch widths are equal (the paper's code varies them per branch); the shortcut is a 1×1 conv-BN "
              "only when in ≠ out channels. Ends in an activation, so it is not identity-initialisable itself.")

    def _hidden(self, cin: int) -> int:
        return max(cin // self.reduction, 1)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        c, t = self._hidden(x[1]), Tally()
        for i, d in enumerate(self.dilations):
            y = t.conv(x, c, 1)
            for _ in range(i):
                y = t.conv(y, c, 3)
            t.conv(y, c, 3, d=d)
        t.conv((x[0], c * len(self.dilations), x[2], x[3]), self.out_channels, 1)
        if x[1] != self.out_channels:
            t.conv(x, self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cin = in_shapes[0][1]
        return RFB(cin, self.out_channels, self._hidden(cin), self.dilations, self.scale, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
