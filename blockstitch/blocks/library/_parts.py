"""Small parts shared by the conv, re-param, sampling, YOLO and fusion families of the library.

* :func:`cna` — conv → BatchNorm → activation with Ultralytics' child names (``conv``, ``bn``, ``act``), so
  weights move between the two by name.
* :class:`Tally` — the analytic MACs of a block, written as the chain of convolutions and matmuls it runs,
  each counted the way ``torch.utils.flop_counter`` counts it (half its FLOPs).
* :func:`fold_bn` — a conv followed by an eval-mode BatchNorm as one kernel and bias (for ``fuse()``).
* :class:`SameShapeSpec` — the base of blocks whose output has the shape of their input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...blockspec import BlockSpec, Shape
from ...errors import ShapeError
from ..conv import ConvNormAct
from ..layers import get_act
from ..ops import spatial

__all__ = ["cna", "Tally", "fold_bn", "SameShapeSpec", "need_divisible", "autopad"]


def autopad(kernel: int, dilation: int = 1) -> int:
    """Padding that keeps the size of a stride-1 conv: ``autopad(3) == 1``, ``autopad(3, 2) == 2``."""
    return dilation * (kernel - 1) // 2


def cna(cin: int, cout: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, d: int = 1,
        act: str = "silu", norm: bool = True) -> nn.Module:
    """Conv (no bias when normed) → BatchNorm → activation, children named ``conv``/``bn``/``act``.

    >>> cna(8, 16, 3, 2)(torch.randn(1, 8, 9, 7)).shape
    torch.Size([1, 16, 5, 4])
    """
    pad = autopad(k, d) if p is None else p
    conv = nn.Conv2d(cin, cout, k, s, pad, d, g, bias=not norm)
    bn = nn.BatchNorm2d(cout) if norm else None
    return ConvNormAct(conv, bn, get_act(act, inplace=False) if act != "none" else nn.Identity())


class Tally:
    """Running MACs of a block's forward pass, following its shapes.

    >>> t = Tally()
    >>> t.conv((1, 8, 9, 7), 16, 3)
    (1, 16, 9, 7)
    >>> t.macs == 1 * 16 * 9 * 7 * 8 * 9
    True
    """

    def __init__(self) -> None:
        self.macs = 0

    def conv(self, x: Shape, cout: int, k: int | tuple[int, int] = 1, s: int | tuple[int, int] = 1,
             p: int | tuple[int, int] | None = None, g: int = 1, d: int = 1) -> Shape:
        """A 2-d convolution of ``x`` (default padding keeps the size at stride 1); returns its output shape."""
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (s, s) if isinstance(s, int) else s
        if p is None:
            ph, pw = autopad(kh, d), autopad(kw, d)
        else:
            ph, pw = (p, p) if isinstance(p, int) else p
        oh, ow = spatial("conv", x, (kh, kw), (sh, sw), (ph, pw), (d, d))
        out = (x[0], cout, oh, ow)
        self.macs += math.prod(out) * (x[1] // g) * kh * kw
        return out

    def matmul(self, batch: int, m: int, k: int, n: int) -> None:
        """``batch`` products of an m×k by a k×n matrix (mm, bmm, linear)."""
        self.macs += batch * m * k * n

    def linear(self, rows: int, fin: int, fout: int) -> None:
        """A linear layer on ``rows`` vectors."""
        self.macs += rows * fin * fout


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x))`` as one conv (BatchNorm in eval mode: running statistics).

    >>> conv, bn = nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8).eval()
    >>> w, b = fold_bn(conv.weight, None, bn)
    >>> torch.allclose(F.conv2d(x, w, b, padding=1), bn(conv(x)), atol=1e-6)
    True
    """
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    b = torch.zeros_like(bn.running_mean) if bias is None else bias
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias + (b - bn.running_mean) * scale


def need_divisible(kind: str, what: str, value: int, by: int, in_shapes: Sequence[Shape]) -> None:
    """Raise a :class:`ShapeError` unless ``value`` divides by ``by``.

    >>> need_divisible("adown", "in_channels", 15, 2, [(1, 15, 8, 8)])
    Traceback (most recent call last):
    ShapeError: 'adown' needs in_channels divisible by 2 …
    """
    if by <= 0 or value % by:
        raise ShapeError(f"'{kind}' needs {what} divisible by {by}", expected=f"{what} multiple of {by}",
                         found=f"{what}={value}", in_shapes=in_shapes)


class SameShapeSpec(BlockSpec):
    """A `b c h w` block whose output has the shape of its input."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return tuple(in_shapes[0])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
