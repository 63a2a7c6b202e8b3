"""The CSP blocks of the YOLO family: C3 (YOLOv5), C2f (YOLOv8) and GELAN's RepNCSPELAN4 (YOLOv9).

Child names are Ultralytics' (``cv1``, ``m.0.cv2.bn`` …) so its weights load by name; the parity tests in
tests/test_library_parity.py build both and compare parameters and outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..layers import ActName
from ._parts import Tally, cna
from .reparam import RepBranches

__all__ = ["Bottleneck", "C2f", "C3", "RepNCSPELAN4", "C2fSpec", "C3Spec", "RepNCSPELAN4Spec"]

_YOLOV8 = Paper("YOLO by Ultralytics (YOLOv8)", "software", 2023, "https://github.com/ultralytics/ultralytics")
_CSP = Paper("CSPNet: A New Backbone that can Enhance Learning Capability of CNN", "CVPR Workshops", 2020,
             "https://arxiv.org/abs/1911.11929")


class Bottleneck(nn.Module):
    """``x + cv2(cv1(x))`` (the sum only when asked and the widths agree); cv1 may be a RepConv."""

    def __init__(self, cin: int, cout: int, shortcut: bool, groups: int, kernels: tuple[int, int], act: str,
                 rep: bool = False, hidden: int | None = None) -> None:
        super().__init__()
        mid = cout if hidden is None else hidden
        self.cv1 = (RepBranches(cin, mid, 3, 1, 1, act, identity=False) if rep
                    else cna(cin, mid, kernels[0], act=act))
        self.cv2 = cna(mid, cout, kernels[1], g=groups, act=act)
        self.add = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


def _bottleneck_macs(t: Tally, x: Shape, c: int, kernels: tuple[int, int], groups: int, rep: bool = False,
                     hidden: int | None = None) -> Shape:
    mid = c if hidden is None else hidden
    if rep:
        t.conv(x, mid, 1)
    y = t.conv(x, mid, kernels[0])
    return t.conv(y, c, kernels[1], g=groups)


class C2f(nn.Module):
    """cv1 splits into two halves; each bottleneck feeds on the last piece; cv2 mixes every piece."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool, groups: int, hidden: int, act: str) -> None:
        super().__init__()
        self.c = hidden
        self.cv1 = cna(cin, 2 * hidden, 1, act=act)
        self.cv2 = cna((2 + n) * hidden, cout, 1, act=act)
        self.m = nn.ModuleList(Bottleneck(hidden, hidden, shortcut, groups, (3, 3), act) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            pieces.append(block(pieces[-1]))
        return self.cv2(torch.cat(pieces, 1))


class C3(nn.Module):
    """Two 1×1 paths (one through n bottlenecks), concatenated and mixed by cv3."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool, groups: int, hidden: int, act: str,
                 rep: bool = False, kernels: tuple[int, int] = (1, 3)) -> None:
        super().__init__()
        self.cv1 = cna(cin, hidden, 1, act=act)
        self.cv2 = cna(cin, hidden, 1, act=act)
        self.cv3 = cna(2 * hidden, cout, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, groups, kernels, act, rep) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


def _c3_macs(t: Tally, x: Shape, cout: int, n: int, groups: int, hidden: int, rep: bool = False,
             kernels: tuple[int, int] = (1, 3)) -> Shape:
    y = t.conv(x, hidden, 1)
    t.conv(x, hidden, 1)
    for _ in range(n):
        y = _bottleneck_macs(t, y, hidden, (3, 3) if rep else kernels, groups, rep)
    return t.conv((*y[:1], 2 * hidden, *y[2:]), cout, 1)


class _CSPSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels."""
    depth: PositiveInt = Field(1, le=64)
    """Number of bottlenecks (Ultralytics' `n`, scaled by the depth multiple there)."""
    shortcut: bool = True
    """Residual sum inside each bottleneck."""
    groups: PositiveInt = 1
    """Groups of each bottleneck's second 3×3 conv."""
    expansion: PositiveFloat = Field(0.5, le=4)
    """Hidden width = int(out_channels × expansion)."""
    act: ActName = "silu"
    """Activation of every conv."""

    channel_fields = ("out_channels",)

    def hidden(self) -> int:
        """The hidden width."""
        c = int(self.out_channels * self.expansion)
        if c < 1 or c % self.groups:
            raise ShapeError(f"'{self.kind}' hidden width int({self.out_channels} × {self.expansion}) = {c} "
                             f"must be ≥ 1 and divisible by groups={self.groups}", found=str(c))
        return c

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        self.hidden()
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "depth": 2}, [[(2, 8, 8, 8)], [(1, 16, 13, 9)]]


@register_block
class C2fSpec(_CSPSpec):
    """C2f (YOLOv8): a CSP block whose every bottleneck output joins the final 1×1 conv (ELAN-style)."""

    kind: Literal["c2f"] = "c2f"
    shortcut: bool = False
    """Residual sum inside each bottleneck (Ultralytics: True in the backbone, False in the neck)."""

    card = BlockCard(
        category="block", paper=_YOLOV8, aliases=("C2f", "C2F"),
        channel_rule="any", insert_where="YOLOv8 backbone/neck stages; replace C3 or a ResNet stage",
        notes="Equal to ultralytics.nn.modules.C2f parameter for parameter (tests/test_library_parity.py).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t, c = Tally(), self.hidden()
        y = t.conv(in_shapes[0], 2 * c, 1)
        piece: tuple[int, ...] = (y[0], c, y[2], y[3])
        for _ in range(self.depth):
            piece = _bottleneck_macs(t, piece, c, (3, 3), self.groups)
        t.conv((y[0], (2 + self.depth) * c, y[2], y[3]), self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return C2f(in_shapes[0][1], self.out_channels, self.depth, self.shortcut, self.groups, self.hidden(),
                   self.act)


@register_block
class C3Spec(_CSPSpec):
    """C3 (YOLOv5): CSP bottleneck with three convs — two 1×1 paths, n bottlenecks on one, a 1×1 to mix."""

    kind: Literal["c3"] = "c3"

    card = BlockCard(
        category="block", paper=_CSP, aliases=("C3", "BottleneckCSP", "CSP"),
        insert_where="YOLOv5 backbone/neck stages",
        notes="Ultralytics' C3 (YOLOv5), equal to it parameter for parameter (tests/test_library_parity.py).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t = Tally()
        _c3_macs(t, in_shapes[0], self.out_channels, self.depth, self.groups, self.hidden())
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return C3(in_shapes[0][1], self.out_channels, self.depth, self.shortcut, self.groups, self.hidden(),
                  self.act)


class RepNCSPELAN4(nn.Module):
    """GELAN block: cv1 splits in two; two RepCSP→3×3 stages each feed the next; cv4 mixes all four pieces."""

    def __init__(self, cin: int, cout: int, hidden: int, inner: int, n: int, act: str) -> None:
        super().__init__()
        self.c = hidden // 2
        self.cv1 = cna(cin, hidden, 1, act=act)
        self.cv2 = nn.Sequential(C3(hidden // 2, inner, n, True, 1, inner // 2, act, rep=True),
                                 cna(inner, inner, 3, act=act))
        self.cv3 = nn.Sequential(C3(inner, inner, n, True, 1, inner // 2, act, rep=True),
                                 cna(inner, inner, 3, act=act))
        self.cv4 = cna(hidden + 2 * inner, cout, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = list(self.cv1(x).chunk(2, 1))
        pieces.append(self.cv2(pieces[-1]))
        pieces.append(self.cv3(pieces[-1]))
        return self.cv4(torch.cat(pieces, 1))


@register_block
class RepNCSPELAN4Spec(BlockSpec):
    """GELAN's RepNCSPELAN4 (YOLOv9, Wang et al. 2024): ELAN aggregation over two RepCSP (RepConv-bottleneck
    CSP) stages."""

    kind: Literal["repncspelan4"] = "repncspelan4"
    out_channels: PositiveInt
    """Output channels (Ultralytics' c2)."""
    hidden_channels: PositiveInt | None = None
    """Width after cv1, split in two halves (c3); default out_channels / 2 (made even), as in YOLOv9's GELAN
    configs (e.g. `[512, 256, 128]`); must be even."""
    inner_channels: PositiveInt | None = None
    """Width of each RepCSP stage (c4); default out_channels / 4 (at least 2)."""
    depth: PositiveInt = Field(1, le=64)
    """RepBottlenecks per RepCSP (n)."""
    act: ActName = "silu"
    """Activation of every conv."""

    channel_fields = ("out_channels", "hidden_channels", "inner_channels")

    card = BlockCard(
        category="block",
        paper=Paper("YOLOv9: Learning What You Want to Learn Using Programmable Gradient Information", "ECCV",
                    2024, "https://arxiv.org/abs/2402.13616"),
        aliases=("RepNCSPELAN4", "GELAN", "ELAN"),
        insert_where="YOLOv9 backbone/neck stages; replace C2f",
        notes="Equal to ultralytics.nn.modules.RepNCSPELAN4 parameter for parameter (tests/test_library_parity.py).")

    def widths(self) -> tuple[int, int]:
        """(hidden, inner) widths."""
        c3 = self.hidden_channels or 2 * max(self.out_channels // 4, 1)
        c4 = self.inner_channels or max(self.out_channels // 4, 2)
        if c3 % 2 or c4 < 2:
            raise ShapeError(f"'{self.kind}' needs an even hidden width and inner width ≥ 2",
                             found=f"hidden={c3}, inner={c4}")
        return c3, c4

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        self.widths()
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        c3, c4 = self.widths()
        t = Tally()
        y = t.conv(in_shapes[0], c3, 1)
        piece: tuple[int, ...] = (y[0], c3 // 2, y[2], y[3])
        for _ in range(2):
            piece = t.conv(_c3_macs(t, piece, c4, self.depth, 1, c4 // 2, rep=True), c4, 3)
        t.conv((y[0], c3 + 2 * c4, y[2], y[3]), self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c3, c4 = self.widths()
        return RepNCSPELAN4(in_shapes[0][1], self.out_channels, c3, c4, self.depth, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16}, [[(2, 8, 8, 8)], [(1, 16, 13, 9)]]
