"""Convolutions with attention inside the kernel: ODConv (omni-dimensional dynamic convolution) and RFAConv
(receptive-field attention convolution)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ..conv import resolve_groups
from ..layers import get_act
from ._parts import Tally, autopad, cna
from .conv_dynamic import _ConvSpec, batched_conv

__all__ = ["ODConvSpec", "RFAConvSpec", "ODConv", "RFAConv"]


class ODConv(nn.Module):
    """Four attentions from one pooled descriptor — over input channels, output filters, kernel positions and
    the K kernels — applied along all four dimensions of the kernel space; then BN → act."""

    def __init__(self, cin: int, cout: int, k: int, s: int, groups: int, n: int, hidden: int, temperature: float,
                 act: str) -> None:
        super().__init__()
        self.stride, self.padding, self.groups, self.temperature = s, autopad(k), groups, temperature
        self.fc = nn.Conv2d(cin, hidden, 1)
        self.channel_fc = nn.Conv2d(hidden, cin, 1)
        self.filter_fc = nn.Conv2d(hidden, cout, 1)
        self.spatial_fc = nn.Conv2d(hidden, k * k, 1)
        self.kernel_fc = nn.Conv2d(hidden, n, 1)
        # the K kernels stacked along the output axis, 4-d so that channels_last conversion works
        self.weight = nn.Parameter(torch.empty(n * cout, cin // groups, k, k))
        self.n = n
        with torch.no_grad():
            for i in range(n):
                nn.init.kaiming_normal_(self.weight[i * cout:(i + 1) * cout], mode="fan_out", nonlinearity="relu")
        self.bn = nn.BatchNorm2d(cout)
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        ctx = F.relu(self.fc(F.adaptive_avg_pool2d(x, 1)))  # b hidden 1 1
        a_in = (self.channel_fc(ctx) / self.temperature).sigmoid()  # b cin 1 1
        a_out = (self.filter_fc(ctx) / self.temperature).sigmoid()  # b cout 1 1
        a_pos = (self.spatial_fc(ctx) / self.temperature).sigmoid().view(b, 1, 1, *self.weight.shape[-2:])
        a_ker = (self.kernel_fc(ctx).flatten(1) / self.temperature).softmax(dim=1)  # b n
        n, (nout, cin_g, kh, kw) = self.n, self.weight.shape
        # Σ_k α_k W_k as one matmul (b n)·(n o·i·k·k), then the position attention on every kernel
        kernels = (a_ker @ self.weight.reshape(n, -1)).view(b, nout // n, cin_g, kh, kw) * a_pos
        y = batched_conv(x * a_in, kernels, self.stride, self.padding, self.groups)
        return self.act(self.bn(y * a_out))


@register_block
class ODConvSpec(_ConvSpec):
    """ODConv (Li et al., ICLR 2022): a dynamic convolution whose attention covers all four dimensions of the
    kernel space — input channels, output filters, spatial positions and the number of kernels."""

    kind: Literal["odconv"] = "odconv"
    groups: PositiveInt = 1
    """Channel groups of the convolution."""
    kernels: PositiveInt = Field(4, le=16)
    """Number of kernels K."""
    reduction: PositiveFloat = Field(0.0625, le=1)
    """Hidden width of the attention = max(int(in_channels × reduction), min_hidden)."""
    min_hidden: PositiveInt = Field(16, le=256)
    """Smallest hidden width."""
    temperature: PositiveFloat = 1.0
    """Temperature of the attentions."""

    card = BlockCard(
        category="conv",
        paper=Paper("Omni-Dimensional Dynamic Convolution", "ICLR", 2022, "https://arxiv.org/abs/2209.07947"),
        aliases=("ODConv", "ODConv2d", "OmniDynamicConv"),
        channel_rule="multiple_of:groups",
        insert_where="replace the 3×3 convs of ResNet/MobileNet blocks or YOLO Convs",
        notes="The attention MLP has no BatchNorm (the reference's BN on a 1×1 pooled map fails at batch 1 in "
              "training); ReLU only. Per-sample kernels run as one grouped conv.")

    def _hidden(self, cin: int) -> int:
        return max(int(cin * self.reduction), self.min_hidden)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        g = resolve_groups(self.groups, c, self.out_channels, self.kind)
        t, k, hid = Tally(), self.kernel_size, self._hidden(c)
        t.conv((b, c, 1, 1), hid, 1)
        for width in (c, self.out_channels, k * k, self.kernels):
            t.conv((b, hid, 1, 1), width, 1)
        t.matmul(1, b, self.kernels, self.out_channels * (c // g) * k * k)
        t.conv(in_shapes[0], self.out_channels, k, self.stride, g=g)
        return t.macs

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24, "groups": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        g = resolve_groups(self.groups, c, self.out_channels, self.kind)
        return ODConv(c, self.out_channels, self.kernel_size, self.stride, g, self.kernels, self._hidden(c),
                      self.temperature, self.act)


class RFAConv(nn.Module):
    """Receptive-field features (a grouped k×k conv giving each position's k² window features), weighted by a
    softmax attention over the window, laid out as a (h·k)×(w·k) map, then a k×k conv with stride k."""

    def __init__(self, cin: int, cout: int, k: int, s: int, act: str) -> None:
        super().__init__()
        self.k, self.stride = k, s
        self.get_weight = nn.Conv2d(cin, cin * k * k, 1, groups=cin, bias=False)
        self.generate_feature = cna(cin, cin * k * k, k, s, autopad(k), g=cin, act="relu")
        self.conv = cna(cin, cout, k, k, 0, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        k = self.k
        pooled = F.avg_pool2d(x, k, self.stride, autopad(k), count_include_pad=True)
        h, w = pooled.shape[-2:]
        weight = self.get_weight(pooled).view(b, c, k * k, h, w).softmax(dim=2)
        feature = self.generate_feature(x).view(b, c, k * k, h, w)
        # b c (k1 k2) h w → b c (h k1) (w k2): each window's weighted features become a k×k patch
        y = (feature * weight).view(b, c, k, k, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * k, w * k)
        return self.conv(y)


@register_block
class RFAConvSpec(_ConvSpec):
    """RFAConv (Zhang et al. 2023): receptive-field attention — attention weights per position *within* each
    k×k window (not shared across windows, unlike spatial attention), applied before a stride-k conv."""

    kind: Literal["rfaconv"] = "rfaconv"

    card = BlockCard(
        category="conv",
        paper=Paper("RFAConv: Innovating Spatial Attention and Standard Convolutional Operation", "arXiv", 2023,
                    "https://arxiv.org/abs/2304.03198"),
        aliases=("RFAConv", "RFCAConv", "RFCBAMConv"),
        insert_where="replace a 3×3 Conv in YOLO backbones/necks or a ResNet block",
        notes="Odd kernel sizes keep the size at stride 1. The receptive-field map is k² times the input, so "
              "activation memory grows by k² (9× at k=3).")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x, k, t = in_shapes[0], self.kernel_size, Tally()
        y = t.conv(x, x[1] * k * k, k, self.stride, g=x[1])  # generate_feature
        t.conv((x[0], x[1], y[2], y[3]), x[1] * k * k, 1, g=x[1])  # get_weight on the pooled map (same size)
        t.conv((y[0], x[1], y[2] * k, y[3] * k), self.out_channels, k, k, 0)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return RFAConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride, self.act)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 8, 8, 8)], [(1, 8, 13, 9)]]

