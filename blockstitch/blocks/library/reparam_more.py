"""More re-parameterisable convs: ACNet's asymmetric convolution block and MobileOne's over-parameterised
block. Both ``fuse()`` to one conv (+ activation), see :mod:`.reparam`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..layers import ActName, get_act
from ._parts import Tally, cna, fold_bn
from .reparam import _RepSpec, fused_conv

__all__ = ["ACBSpec", "MobileOneSpec", "AsymmetricConvBlock", "MobileOneBlock"]


def _identity_kernel(conv: nn.Conv2d, like: torch.Tensor) -> torch.Tensor:
    """The identity as a (grouped) k×k kernel: a 1 at the centre, on each output channel's own input channel."""
    k = conv.kernel_size[0]
    eye = torch.zeros_like(like)
    idx = torch.arange(conv.in_channels, device=like.device)
    eye[idx, idx % (conv.in_channels // conv.groups), k // 2, k // 2] = 1.0
    return eye


class AsymmetricConvBlock(nn.Module):
    """``act(bn(conv_k×k(x)) + bn(conv_1×k(x)) + bn(conv_k×1(x)))``: the square kernel's skeleton strengthened."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int, act: str) -> None:
        super().__init__()
        self.square = cna(cin, cout, k, stride, k // 2, groups, act="none")
        self.hor = nn.Sequential()
        self.hor.add_module("conv", nn.Conv2d(cin, cout, (1, k), stride, (0, k // 2), groups=groups, bias=False))
        self.hor.add_module("bn", nn.BatchNorm2d(cout))
        self.ver = nn.Sequential()
        self.ver.add_module("conv", nn.Conv2d(cin, cout, (k, 1), stride, (k // 2, 0), groups=groups, bias=False))
        self.ver.add_module("bn", nn.BatchNorm2d(cout))
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.square(x) + self.hor(x) + self.ver(x))

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One k×k conv (+ the activation): the 1×k and k×1 kernels added to the centre row and column."""
        conv = self.square.conv
        p = int(conv.kernel_size[0]) // 2
        w, b = fold_bn(conv.weight, None, self.square.bn)
        wh, bh = fold_bn(self.hor.conv.weight, None, self.hor.bn)
        wv, bv = fold_bn(self.ver.conv.weight, None, self.ver.bn)
        w = w + F.pad(wh, [0, 0, p, p]) + F.pad(wv, [p, p, 0, 0])
        return fused_conv(conv, w, b + bh + bv, self.act)


@register_block
class ACBSpec(_RepSpec):
    """Asymmetric Convolution Block (ACNet, Ding et al., ICCV 2019): a k×k conv plus 1×k and k×1 convs, each
    with BN, summed; ``fuse()`` adds the asymmetric kernels into the square one."""

    kind: Literal["acb"] = "acb"
    act: ActName = "relu"
    """Activation after the sum (`none` for a plain conv replacement)."""

    card = BlockCard(
        category="conv",
        paper=Paper("ACNet: Strengthening the Kernel Skeletons for Powerful CNN via Asymmetric Convolution Blocks",
                    "ICCV", 2019, "https://arxiv.org/abs/1908.03930"),
        aliases=("ACNet", "ACB", "AsymmetricConv"),
        channel_rule="multiple_of:groups",
        insert_where="replace any k×k conv-BN(-act) of a CNN; fuse for deployment",
        notes="Equal to fightingcv-attention's ACNet at stride 1 (tests/test_library_parity.py); that ACNet "
              "ignores `stride` in its training branches, a bug. bs.fuse → one conv.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x, co, k, s, g = in_shapes[0], self.out_channels, self.kernel_size, self.stride, self.groups
        t = Tally()
        t.conv(x, co, k, s, g=g)
        t.conv(x, co, (1, k), s, (0, k // 2), g=g)
        t.conv(x, co, (k, 1), s, (k // 2, 0), g=g)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.out_shape(in_shapes)
        return AsymmetricConvBlock(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride,
                                   self.groups, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24, "groups": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class MobileOneBlock(nn.Module):
    """``act(bn(x) + bn(conv_1×1(x)) + Σ_i bn(conv_k×k,i(x)))``: identity, scale and n over-parameterised
    branches. Child names are timm's (``identity``, ``conv_kxk``, ``conv_scale``), so its weights load by name."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int, branches: int, act: str) -> None:
        super().__init__()
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.conv_kxk = nn.ModuleList(cna(cin, cout, k, stride, k // 2, groups, act="none") for _ in range(branches))
        self.conv_scale = cna(cin, cout, 1, stride, 0, groups, act="none") if k > 1 else None
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_kxk[0](x)
        for branch in self.conv_kxk[1:]:
            out = out + branch(x)
        if self.conv_scale is not None:
            out = out + self.conv_scale(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return self.act(out)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One k×k conv (+ the activation) equal to this block in eval mode."""
        conv = self.conv_kxk[0].conv
        p = int(conv.kernel_size[0]) // 2
        w: Any = 0  # sums of the branches' folded kernels and biases
        b: Any = 0
        for branch in self.conv_kxk:
            wi, bi = fold_bn(branch.conv.weight, None, branch.bn)
            w, b = w + wi, b + bi
        if self.conv_scale is not None:
            ws, bs_ = fold_bn(self.conv_scale.conv.weight, None, self.conv_scale.bn)
            w, b = w + F.pad(ws, [p] * 4), b + bs_
        if self.identity is not None:
            wi, bi = fold_bn(_identity_kernel(conv, w), None, self.identity)
            w, b = w + wi, b + bi
        return fused_conv(conv, w, b, self.act)


@register_block
class MobileOneSpec(_RepSpec):
    """MobileOne block (Vasu et al., CVPR 2023): n over-parameterised k×k conv-BN branches, a 1×1 conv-BN
    "scale" branch and an identity BN, summed; ``fuse()`` leaves one conv — a 1 ms mobile backbone's unit."""

    kind: Literal["mobileone"] = "mobileone"
    kernel_size: Literal[1, 3, 5, 7] = 3  # type: ignore[assignment]  # wider than _RepSpec's: 1×1 MobileOne blocks
    """Kernel of the k×k branches (1 for MobileOne's pointwise blocks, which have no scale branch)."""
    branches: int = Field(4, ge=1, le=8)
    """Number of over-parameterised k×k branches (the paper's k)."""
    act: ActName = "relu"
    """Activation after the sum (FastViT uses gelu)."""

    card = BlockCard(
        category="conv",
        paper=Paper("MobileOne: An Improved One millisecond Mobile Backbone", "CVPR", 2023,
                    "https://arxiv.org/abs/2206.04040"),
        aliases=("MobileOne", "MobileOneBlock"),
        channel_rule="multiple_of:groups",
        insert_where="replace a depthwise (groups = channels) or pointwise conv of a mobile backbone",
        notes="Identity BN only at stride 1 with in = out channels. Equal to timm's MobileOneBlock (FastViT) "
              "parameter for parameter (tests/test_library_parity.py). bs.fuse → one conv.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x, co, k, s, g = in_shapes[0], self.out_channels, self.kernel_size, self.stride, self.groups
        t = Tally()
        for _ in range(self.branches):
            t.conv(x, co, k, s, g=g)
        if k > 1:
            t.conv(x, co, 1, s, 0, g=g)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.out_shape(in_shapes)
        return MobileOneBlock(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.groups,
                              self.branches, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "groups": 16, "branches": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
