"""Shared by the attention families (attention_channel, attention_spatial, attention_group, attention_nonlocal):
a shape-keeping `b c h w` spec base with a located channel check, and a few tiny modules.

(A leading underscore keeps this file out of the package's auto-import; the family files import it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...blockspec import BlockSpec, Shape
from ...errors import ShapeError, fmt_shape

__all__ = ["GateSpec", "ResidualGamma", "hard_sigmoid", "zero_", "conv_bn_act"]


class GateSpec(BlockSpec):
    """An attention block whose output has the shape of its `b c h w` input.

    Subclasses that need the channels to divide by something override :attr:`channel_multiple` (and state
    ``channel_rule="multiple_of:channel_multiple"`` in their card)."""

    @property
    def channel_multiple(self) -> int:
        """The input channels must be a multiple of this."""
        return 1

    def check(self, in_shapes: Sequence[Shape]) -> tuple[int, int, int, int]:
        """Rank and channel checks with a located message; returns ``(b, c, h, w)``."""
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        m = self.channel_multiple
        if c % m:
            raise ShapeError(f"'{self.kind}' needs the channels to be a multiple of {m}", in_shapes=in_shapes,
                             expected=f"c a multiple of {m}", found=fmt_shape(in_shapes[0]),
                             hint="change groups/frequencies, or the width before this block")
        return b, c, h, w

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.check(in_shapes)
        return tuple(in_shapes[0])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class ResidualGamma(nn.Module):
    """``x + gamma * y`` with a learnt scalar ``gamma`` that starts at ``init`` (0 in DANet and CCNet)."""

    def __init__(self, init: float = 0.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * y


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``relu6(x + 3) / 6``, the gate of eSE (VoVNetV2)."""
    return torch.nn.functional.relu6(x + 3.0) / 6.0


def zero_(*modules: nn.Module) -> None:
    """Zero every parameter of ``modules`` (weights and biases, BatchNorm's affine weight and bias)."""
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.zero_()


def conv_bn_act(cin: int, cout: int, k: int | tuple[int, int] = 1, groups: int = 1, dilation: int = 1,
                act: nn.Module | None = None) -> nn.Sequential:
    """conv → BatchNorm → activation ('same' padding for odd kernels)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    conv = nn.Conv2d(cin, cout, (kh, kw), padding=(dilation * (kh - 1) // 2, dilation * (kw - 1) // 2),
                     dilation=dilation, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), act if act is not None else nn.Identity())
