"""Later YOLO blocks: C3k2 (YOLO11), SPPELAN and AConv (YOLOv9), C2fCIB with its re-parameterisable RepVGGDW
(YOLOv10). Child names are Ultralytics' (parity in tests/test_library_parity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ..layers import ActName, get_act
from ._parts import Tally, cna, fold_bn
from .reparam import fused_conv
from .yolo import C2f, C3, Bottleneck, _bottleneck_macs, _c3_macs, _CSPSpec
from .yolo_psa import PSABlock, _attention_macs, default_heads

__all__ = ["C3k2Spec", "SPPELANSpec", "AConvSpec", "C2fCIBSpec", "RepVGGDW"]

_YOLOV9 = Paper("YOLOv9: Learning What You Want to Learn Using Programmable Gradient Information", "ECCV", 2024,
                "https://arxiv.org/abs/2402.13616")
_YOLOV10 = Paper("YOLOv10: Real-Time End-to-End Object Detection", "NeurIPS", 2024, "https://arxiv.org/abs/2405.14458")


class C3k2(C2f):
    """C2f whose blocks are half-width bottlenecks, C3k blocks (a C3 with two 3×3 bottlenecks) or a bottleneck
    followed by a PSA block."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool, groups: int, c: int, act: str, c3k: bool,
                 attn: bool) -> None:
        super().__init__(cin, cout, n, shortcut, groups, c, act)
        half = int(c * 0.5)

        def block() -> nn.Module:
            if attn:
                return nn.Sequential(Bottleneck(c, c, shortcut, groups, (3, 3), act, hidden=half),
                                     PSABlock(c, default_heads(c), 0.5, act))
            if c3k:
                return C3(c, c, 2, shortcut, groups, half, act, kernels=(3, 3))
            return Bottleneck(c, c, shortcut, groups, (3, 3), act, hidden=half)

        self.m = nn.ModuleList(block() for _ in range(n))


@register_block
class C3k2Spec(_CSPSpec):
    """C3k2 (YOLO11): the C2f layout with cheaper blocks — half-width bottlenecks, or C3k blocks when `c3k`
    (deeper stages), or bottleneck + PSA when `attn`."""

    kind: Literal["c3k2"] = "c3k2"
    c3k: bool = False
    """Use C3k blocks (YOLO11's deeper/larger stages set it)."""
    attn: bool = False
    """Each block is a bottleneck followed by a PSA attention block."""

    card = BlockCard(
        category="block",
        paper=Paper("YOLO11 by Ultralytics", "software", 2024, "https://github.com/ultralytics/ultralytics"),
        aliases=("C3k2", "C3k"),
        channel_rule="any",
        insert_where="YOLO11 backbone/neck stages; replace C2f",
        notes="Equal to ultralytics' C3k2 (c3k, attn) parameter for parameter (tests/test_library_parity.py). "
              "The hidden width int(out × expansion) must be ≥ 2.")

    def _widths(self) -> tuple[int, int]:
        c = self.hidden()
        if c < 2:
            raise ShapeError(f"'c3k2' needs a hidden width ≥ 2, got int({self.out_channels} × {self.expansion})")
        return c, int(c * 0.5)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        (c, half), t = self._widths(), Tally()
        y = t.conv(in_shapes[0], 2 * c, 1)
        piece = (y[0], c, y[2], y[3])
        for _ in range(self.depth):
            if self.c3k:
                _c3_macs(t, piece, c, 2, self.groups, half, kernels=(3, 3))
            else:
                _bottleneck_macs(t, piece, c, (3, 3), self.groups, hidden=half)
            if self.attn:
                _attention_macs(t, piece, default_heads(c), 0.5)
                t.conv(t.conv(piece, 2 * c, 1), c, 1)
        t.conv((y[0], (2 + self.depth) * c, y[2], y[3]), self.out_channels, 1)
        return t.macs

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "c3k": True}, [[(2, 8, 8, 8)], [(1, 16, 13, 9)]]

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c, _ = self._widths()
        return C3k2(in_shapes[0][1], self.out_channels, self.depth, self.shortcut, self.groups, c, self.act,
                    self.c3k, self.attn)


class SPPELAN(nn.Module):
    """cv1, three chained k×k max pools (cv2–cv4), every stage concatenated into cv5."""

    def __init__(self, cin: int, cout: int, c3: int, k: int, act: str) -> None:
        super().__init__()
        self.c = c3
        self.cv1 = cna(cin, c3, 1, act=act)
        self.cv2, self.cv3, self.cv4 = (nn.MaxPool2d(k, 1, k // 2) for _ in range(3))
        self.cv5 = cna(4 * c3, cout, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = [self.cv1(x)]
        for pool in (self.cv2, self.cv3, self.cv4):
            pieces.append(pool(pieces[-1]))
        return self.cv5(torch.cat(pieces, 1))


@register_block
class SPPELANSpec(BlockSpec):
    """SPPELAN (YOLOv9): SPPF's chained max pools in ELAN form, with its own hidden width."""

    kind: Literal["sppelan"] = "sppelan"
    out_channels: PositiveInt
    """Output channels (c2)."""
    hidden_channels: PositiveInt | None = None
    """Width of cv1 and of each pooled map (c3); default out_channels / 2."""
    kernel_size: Literal[3, 5, 7, 9] = 5
    """Max-pool kernel."""
    act: ActName = "silu"
    """Activation of the convs."""

    channel_fields = ("out_channels", "hidden_channels")

    card = BlockCard(
        category="neck", paper=_YOLOV9, aliases=("SPPELAN",),
        insert_where="end of a YOLOv9 backbone, in place of SPPF",
        notes="Equal to ultralytics' SPPELAN parameter for parameter (tests/test_library_parity.py).")

    def _c3(self) -> int:
        return self.hidden_channels or max(self.out_channels // 2, 1)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.out_channels, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t, c3 = Tally(), self._c3()
        y = t.conv(in_shapes[0], c3, 1)
        t.conv((y[0], 4 * c3, y[2], y[3]), self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return SPPELAN(in_shapes[0][1], self.out_channels, self._c3(), self.kernel_size, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16}, [[(2, 16, 8, 8)], [(1, 32, 13, 9)]]


class AConv(nn.Module):
    """2×2 average (stride 1), then a stride-2 3×3 conv-BN-act."""

    def __init__(self, cin: int, cout: int, act: str) -> None:
        super().__init__()
        self.cv1 = cna(cin, cout, 3, 2, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv1(F.avg_pool2d(x, 2, 1, 0, False, True))


@register_block
class AConvSpec(BlockSpec):
    """AConv (YOLOv9): a 2×2 stride-1 average before a stride-2 3×3 conv — ADown without the channel split."""

    kind: Literal["aconv"] = "aconv"
    out_channels: PositiveInt
    """Output channels."""
    act: ActName = "silu"
    """Activation after the conv."""

    channel_fields = ("out_channels",)
    stride_fields = ()

    card = BlockCard(
        category="down", paper=_YOLOV9, aliases=("AConv",), size_rule="min:2",
        insert_where="replace a stride-2 Conv between stages of a small YOLOv9 (t/s) model",
        notes="Output size floor(h/2). Equal to ultralytics' AConv parameter for parameter.")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        if h < 2 or w < 2:
            raise ShapeError("'aconv' needs h, w ≥ 2", expected="h, w ≥ 2", found=f"{h}×{w}", in_shapes=in_shapes)
        return Tally().conv((b, c, h - 1, w - 1), self.out_channels, 3, 2, 1)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        t = Tally()
        t.conv((b, c, h - 1, w - 1), self.out_channels, 3, 2, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return AConv(in_shapes[0][1], self.out_channels, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class RepVGGDW(nn.Module):
    """Depthwise 7×7+BN plus depthwise 3×3+BN, summed, SiLU; ``fuse()`` gives one depthwise 7×7 conv + SiLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = cna(c, c, 7, 1, 3, g=c, act="none")
        self.conv1 = cna(c, c, 3, 1, 1, g=c, act="none")
        self.act = get_act("silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + self.conv1(x))

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One depthwise 7×7 conv (+ SiLU) equal to this block in eval mode."""
        w, b = fold_bn(self.conv.conv.weight, None, self.conv.bn)
        w1, b1 = fold_bn(self.conv1.conv.weight, None, self.conv1.bn)
        return fused_conv(self.conv.conv, w + F.pad(w1, [2, 2, 2, 2]), b + b1, self.act)


class CIB(nn.Module):
    """Compact inverted block: dw 3×3 → 1×1 expand ×2 → dw 3×3 (or RepVGGDW) → 1×1 → dw 3×3, residual when
    it fits."""

    def __init__(self, cin: int, cout: int, shortcut: bool, lk: bool, act: str) -> None:
        super().__init__()
        mid = 2 * cout
        self.cv1 = nn.Sequential(cna(cin, cin, 3, g=cin, act=act), cna(cin, mid, 1, act=act),
                                 RepVGGDW(mid) if lk else cna(mid, mid, 3, g=mid, act=act),
                                 cna(mid, cout, 1, act=act), cna(cout, cout, 3, g=cout, act=act))
        self.add = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv1(x) if self.add else self.cv1(x)


class C2fCIB(C2f):
    """C2f with compact inverted blocks."""

    def __init__(self, cin: int, cout: int, n: int, shortcut: bool, c: int, lk: bool, act: str) -> None:
        super().__init__(cin, cout, n, shortcut, 1, c, act)
        self.m = nn.ModuleList(CIB(c, c, shortcut, lk, act) for _ in range(n))


@register_block
class C2fCIBSpec(_CSPSpec):
    """C2fCIB (YOLOv10): C2f with compact inverted blocks (depthwise 3×3s around pointwise convs) for the
    redundant deep stages; `large_kernel` uses a re-parameterisable 7×7+3×3 depthwise pair."""

    kind: Literal["c2fcib"] = "c2fcib"
    shortcut: bool = False
    """Residual sum inside each CIB (Ultralytics' default False; YOLOv10 configs set True)."""
    groups: Literal[1] = 1
    """Unused by CIB (kept for the C2f family's fields); 1."""
    large_kernel: bool = False
    """RepVGGDW (7×7 + 3×3 depthwise, fusable) in place of the middle depthwise 3×3 (Ultralytics' `lk`)."""

    card = BlockCard(
        category="block", paper=_YOLOV10, aliases=("C2fCIB", "CIB"),
        insert_where="deep YOLOv10 stages (rank-guided block design); replace C2f",
        notes="Equal to ultralytics' C2fCIB parameter for parameter (tests/test_library_parity.py). With "
              "large_kernel, bs.fuse folds each RepVGGDW into one depthwise 7×7 conv.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        c, t = self.hidden(), Tally()
        y = t.conv(in_shapes[0], 2 * c, 1)
        piece = (y[0], c, y[2], y[3])
        for _ in range(self.depth):
            z = t.conv(piece, c, 3, g=c)
            z = t.conv(z, 2 * c, 1)
            if self.large_kernel:
                t.conv(z, 2 * c, 7, g=2 * c)
            t.conv(z, 2 * c, 3, g=2 * c)
            t.conv(t.conv(z, c, 1), c, 3, g=c)
        t.conv((y[0], (2 + self.depth) * c, y[2], y[3]), self.out_channels, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return C2fCIB(in_shapes[0][1], self.out_channels, self.depth, self.shortcut, self.hidden(),
                      self.large_kernel, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "large_kernel": True, "shortcut": True}, [[(2, 8, 8, 8)], [(1, 16, 13, 9)]]

