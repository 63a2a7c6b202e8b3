"""Re-parameterisation with more than parallel k×k/1×1 branches: the Diverse Branch Block and UniRepLKNet's
dilated re-param block. Both ``fuse()`` to one conv (see :mod:`.reparam`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveInt, model_validator
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..layers import ActName, get_act
from ._parts import SameShapeSpec, Tally, cna, fold_bn
from .reparam import _RepSpec, fused_conv

__all__ = ["DBBSpec", "DilatedReparamSpec", "BNPad"]


class BNPad(nn.BatchNorm2d):
    """BatchNorm, then pad by ``pad`` with what the norm gives a zero input (not with zeros), so that
    ``BNPad(conv1x1(x))`` equals ``BN(conv1x1(zero_pad(x)))`` and the branch folds into one conv exactly."""

    def __init__(self, channels: int, pad: int) -> None:
        super().__init__(channels)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.pad == 0:
            return out
        if self.training:  # batch statistics: BN(0) uses this batch's mean and variance
            mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
        else:
            mean, var = self.running_mean, self.running_var  # type: ignore[assignment]  # tracked: never None
        fill = (self.bias - mean * self.weight / (var + self.eps).sqrt()).reshape(1, -1, 1, 1)
        out = F.pad(out, [self.pad] * 4)  # zeros, then the border gets BN(0) channel by channel
        border = torch.ones_like(out)
        border[..., self.pad:-self.pad, self.pad:-self.pad] = 0
        return out + border * fill


class DiverseBranchBlock(nn.Module):
    """k×k+BN ‖ 1×1+BN ‖ 1×1+BN→avg k×k+BN ‖ 1×1+BN→k×k+BN, summed, then the activation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, act: str) -> None:
        super().__init__()
        p = k // 2
        self.dbb_origin = cna(cin, cout, k, stride, p, act="none")
        self.dbb_1x1 = cna(cin, cout, 1, stride, 0, act="none")
        self.dbb_avg = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), BNPad(cout, p),
                                     nn.AvgPool2d(k, stride), nn.BatchNorm2d(cout))
        self.dbb_1x1_kxk = nn.Sequential(nn.Conv2d(cin, cin, 1, bias=False), BNPad(cin, p),
                                         nn.Conv2d(cin, cout, k, stride, 0, bias=False), nn.BatchNorm2d(cout))
        with torch.no_grad():  # the paper starts the 1×1 of the 1×1→k×k branch as the identity
            self.dbb_1x1_kxk[0].weight.copy_(torch.eye(cin).reshape(cin, cin, 1, 1))
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dbb_origin(x) + self.dbb_1x1(x) + self.dbb_avg(x) + self.dbb_1x1_kxk(x)
        return self.act(out)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One k×k conv (+ the activation) equal to this block in eval mode."""
        conv = self.dbb_origin.conv
        k = int(conv.kernel_size[0])
        w, b = fold_bn(conv.weight, None, self.dbb_origin.bn)
        w1, b1 = fold_bn(self.dbb_1x1.conv.weight, None, self.dbb_1x1.bn)
        w, b = w + F.pad(w1, [k // 2] * 4), b + b1
        # 1×1 → BN → k×k average: the average spreads each folded 1×1 weight evenly over the k×k window
        wa, ba = fold_bn(self.dbb_avg[0].weight, None, self.dbb_avg[1])
        wa, ba = fold_bn(wa.expand(-1, -1, k, k) / (k * k), ba, self.dbb_avg[3])
        # 1×1 → BN → k×k: compose the kernels; the BN's bias passes through the k×k kernel's sum
        w1, b1 = fold_bn(self.dbb_1x1_kxk[0].weight, None, self.dbb_1x1_kxk[1])
        wk = self.dbb_1x1_kxk[2].weight
        composed = torch.einsum("omhw,mi->oihw", wk, w1[:, :, 0, 0])
        wc, bc = fold_bn(composed, torch.einsum("omhw,m->o", wk, b1), self.dbb_1x1_kxk[3])
        return fused_conv(conv, w + wa + wc, b + ba + bc, self.act)


@register_block
class DBBSpec(_RepSpec):
    """Diverse Branch Block (Ding et al., CVPR 2021): four branches (k×k, 1×1, 1×1→average, 1×1→k×k), each
    with BN, summed; ``fuse()`` folds them into one k×k conv."""

    kind: Literal["dbb"] = "dbb"
    groups: Literal[1] = 1
    """Channel groups (only 1: the composed 1×1→k×k kernel here is written for dense convs)."""
    act: ActName = "relu"
    """Activation after the sum (`none` for a plain conv replacement)."""

    card = BlockCard(
        category="conv",
        paper=Paper("Diverse Branch Block: Building a Convolution as an Inception-like Unit", "CVPR", 2021,
                    "https://arxiv.org/abs/2103.13425"),
        aliases=("DiverseBranchBlock", "DBB"),
        insert_where="replace any k×k conv-BN(-act) of a CNN; fuse for deployment",
        notes="The padded branches pad with BN(0) per channel (the paper's BN-and-pad) so the fused conv is "
              "exact at the borders too. Dense convs only (groups=1).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x, co, k, s = in_shapes[0], self.out_channels, self.kernel_size, self.stride
        t = Tally()
        t.conv(x, co, k, s)
        t.conv(x, co, 1, s, 0)
        t.conv(x, co, 1)
        mid = t.conv(x, x[1], 1)
        t.conv(mid, co, k, s)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return DiverseBranchBlock(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16}, [[(2, 8, 8, 8)], [(1, 8, 13, 9)]]


_DILATED_BRANCHES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    5: ((3, 3), (1, 2)), 7: ((5, 3, 3), (1, 2, 3)), 9: ((5, 5, 3, 3), (1, 2, 3, 4)),
    11: ((5, 5, 3, 3, 3), (1, 2, 3, 4, 5)), 13: ((5, 7, 3, 3, 3), (1, 2, 3, 4, 5)),
}


class DilatedReparam(nn.Module):
    """Depthwise K×K conv+BN plus depthwise dilated small-kernel convs+BN, summed."""

    def __init__(self, channels: int, k: int, kernels: Sequence[int], dilations: Sequence[int]) -> None:
        super().__init__()
        self.lk = cna(channels, channels, k, 1, k // 2, channels, act="none")
        self.dilated = nn.ModuleList(cna(channels, channels, kk, 1, (kk - 1) * r // 2, channels, r, act="none")
                                     for kk, r in zip(kernels, dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lk(x)
        for branch in self.dilated:
            out = out + branch(x)
        return out

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One depthwise K×K conv equal to this block in eval mode (a dilated kernel is a sparse larger one)."""
        conv = self.lk.conv
        k = int(conv.kernel_size[0])
        w, b = fold_bn(conv.weight, None, self.lk.bn)
        for branch in self.dilated:
            r, kk = int(branch.conv.dilation[0]), int(branch.conv.kernel_size[0])
            wd, bd = fold_bn(branch.conv.weight, None, branch.bn)
            span = (kk - 1) * r + 1
            sparse = wd.new_zeros(*wd.shape[:2], span, span)
            sparse[..., ::r, ::r] = wd
            w, b = w + F.pad(sparse, [(k - span) // 2] * 4), b + bd
        return fused_conv(conv, w, b, None)


@register_block
class DilatedReparamSpec(SameShapeSpec):
    """UniRepLKNet's dilated re-param block (Ding et al., CVPR 2024): a depthwise large-kernel conv with
    parallel depthwise dilated small-kernel convs, each with BN; ``fuse()`` gives one depthwise K×K conv."""

    kind: Literal["dilated_reparam"] = "dilated_reparam"
    kernel_size: Literal[5, 7, 9, 11, 13] = 7
    """Large kernel K (the paper's branch kernels and dilations for it are used unless given)."""
    kernels: tuple[PositiveInt, ...] | None = None
    """Kernels of the dilated branches; default the paper's for K."""
    dilations: tuple[PositiveInt, ...] | None = None
    """Dilation rates of the branches (same length as `kernels`)."""

    card = BlockCard(
        category="conv",
        paper=Paper("UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point Cloud, "
                    "Time-Series and Image Recognition", "CVPR", 2024, "https://arxiv.org/abs/2311.15599"),
        aliases=("DilatedReparamBlock", "DRB", "UniRepLKNet"),
        insert_where="replace the depthwise conv of a ConvNeXt/UniRepLKNet/MetaFormer block",
        notes="Depthwise, shape-keeping. bs.fuse → one depthwise K×K conv with bias.")

    @model_validator(mode="after")
    def _branches_fit(self) -> DilatedReparamSpec:
        ks, rs = self.branches()
        if len(ks) != len(rs):
            raise ValueError("kernels and dilations need the same length")
        for kk, r in zip(ks, rs):
            if kk % 2 == 0 or (kk - 1) * r + 1 > self.kernel_size:
                raise ValueError(f"branch kernel {kk} (odd) at dilation {r} must span at most {self.kernel_size}")
        return self

    def branches(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The (kernels, dilations) of the dilated branches."""
        ks, rs = _DILATED_BRANCHES[self.kernel_size]
        return self.kernels or ks, self.dilations or rs

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        t = Tally()
        t.conv(x, x[1], self.kernel_size, g=x[1])
        for kk, r in zip(*self.branches()):
            t.conv(x, x[1], kk, 1, (kk - 1) * r // 2, g=x[1], d=r)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return DilatedReparam(in_shapes[0][1], self.kernel_size, *self.branches())
