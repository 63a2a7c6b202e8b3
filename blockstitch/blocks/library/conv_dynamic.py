"""Convolutions whose kernel or sampling depends on the input: DCNv2 (modulated deformable), DynamicConv
(attention over K kernels), ODConv (omni-dimensional attention) and RFAConv (receptive-field attention).

Per-sample kernels run as one grouped convolution with the batch folded into the groups, so the profiler
counts exactly one dense convolution per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...registry import register_block
from ..conv import resolve_groups
from ..layers import ActName, get_act
from ._parts import Tally, autopad

__all__ = ["DCNv2Spec", "DynamicConvSpec", "batched_conv"]


class _ConvSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels."""
    kernel_size: PositiveInt = Field(3, le=15)
    """Kernel size (odd keeps the size at stride 1)."""
    stride: PositiveInt = Field(1, le=8)
    """Stride."""
    act: ActName = "silu"
    """Activation after the BatchNorm (`none` for a linear conv)."""

    channel_fields = ("out_channels",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return Tally().conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


class ModulatedDeformConv(nn.Module):
    """A k×k conv sampling at learned offsets, each tap scaled by a learned mask in (0, 1); then BN → act."""

    def __init__(self, cin: int, cout: int, k: int, s: int, deform_groups: int, act: str) -> None:
        super().__init__()
        import torchvision  # noqa: F401  (defines torch.ops.torchvision.deform_conv2d)

        from ...counting import register_formulas  # its FLOP formula, for the profiler and torch's own counter

        register_formulas()
        self.stride, self.padding = s, autopad(k)
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        # offsets (2 per tap) and masks (1 per tap) per deformable group; zero: a plain conv at mask 0.5
        self.offset_mask = nn.Conv2d(cin, 3 * deform_groups * k * k, k, s, self.padding)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)
        self.bn = nn.BatchNorm2d(cout)
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import deform_conv2d

        offset_a, offset_b, mask = self.offset_mask(x).chunk(3, dim=1)
        offset = torch.cat((offset_a, offset_b), dim=1)  # (dy, dx) per tap, as deform_conv2d reads them
        weight, mask = self.weight, mask.sigmoid()
        if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16):
            # torchvision's CPU kernel has no half types: compute in float32, hand back the input's dtype
            y = deform_conv2d(x.float(), offset.float(), weight.float(), None, self.stride, self.padding,
                              mask=mask.float()).to(x.dtype)
        else:
            y = deform_conv2d(x, offset, weight, None, self.stride, self.padding, mask=mask)
        return self.act(self.bn(y))


@register_block
class DCNv2Spec(_ConvSpec):
    """Modulated deformable convolution (DCNv2, Zhu et al., CVPR 2019): each kernel tap samples at a learned
    offset and is weighted by a learned mask, both predicted by a conv from the input; then BN and act."""

    kind: Literal["dcnv2"] = "dcnv2"
    deform_groups: PositiveInt = Field(1, le=64)
    """Channel groups sharing one set of offsets and masks."""

    card = BlockCard(
        category="conv",
        paper=Paper("Deformable ConvNets v2: More Deformable, Better Results", "CVPR", 2019,
                    "https://arxiv.org/abs/1811.11168"),
        aliases=("DCNv2", "DCN", "ModulatedDeformConv", "DeformConv2d"),
        channel_rule="multiple_of:deform_groups",
        insert_where="replace the 3×3 convs of the last backbone stages (ResNet c3–c5) or C2f bottlenecks",
        notes="Pure PyTorch via torchvision.ops.deform_conv2d (CPU and CUDA kernels, no compiled extension). "
              "Half types on CPU run the deformable conv in float32 (torchvision has no CPU half kernel). "
              "Offsets and masks start at zero (a plain conv with every tap at 0.5). MACs count the "
              "convolution; the bilinear sampling counts zero, like interpolation.")

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x, t = in_shapes[0], Tally()
        resolve_groups(self.deform_groups, x[1], x[1], self.kind)
        t.conv(x, 3 * self.deform_groups * self.kernel_size ** 2, self.kernel_size, self.stride)
        t.conv(x, self.out_channels, self.kernel_size, self.stride)
        return t.macs

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24, "deform_groups": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        resolve_groups(self.deform_groups, in_shapes[0][1], in_shapes[0][1], self.kind)
        return ModulatedDeformConv(in_shapes[0][1], self.out_channels, self.kernel_size, self.stride,
                                   self.deform_groups, self.act)


def batched_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, groups: int = 1) -> torch.Tensor:
    """Convolve each sample with its own kernel: ``x`` b c h w, ``weight`` b o (c/groups) k k.

    >>> batched_conv(torch.randn(2, 4, 9, 7), torch.randn(2, 8, 4, 3, 3), stride=1, padding=1).shape
    torch.Size([2, 8, 9, 7])
    """
    b = x.shape[0]
    # b c h w → 1 (b c) h w, b o i k k → (b o) i k k: one grouped conv, a group per sample (× groups)
    y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), weight.reshape(-1, *weight.shape[2:]), None, stride, padding,
                 groups=b * groups)
    return y.reshape(b, -1, *y.shape[2:])


class DynamicConv(nn.Module):
    """``π = softmax(fc2(relu(fc1(gap(x)))) / τ)``; kernel = Σ π_k W_k per sample; conv → BN → act."""

    def __init__(self, cin: int, cout: int, k: int, s: int, n: int, hidden: int, temperature: float,
                 act: str) -> None:
        super().__init__()
        self.stride, self.padding, self.temperature = s, autopad(k), temperature
        self.fc1 = nn.Conv2d(cin, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, n, 1)
        self.weight = nn.Parameter(torch.empty(n, cout * cin * k * k))
        with torch.no_grad():  # each kernel initialised as its own conv would be
            for i in range(n):
                nn.init.kaiming_uniform_(self.weight[i].view(cout, cin, k, k), a=math.sqrt(5))
        self.shape = (cout, cin, k, k)
        self.bn = nn.BatchNorm2d(cout)
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pi = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))).flatten(1)
        pi = (pi / self.temperature).softmax(dim=1)  # b n
        kernels = (pi @ self.weight).view(x.shape[0], *self.shape)  # b o i k k
        return self.act(self.bn(batched_conv(x, kernels, self.stride, self.padding)))


@register_block
class DynamicConvSpec(_ConvSpec):
    """Dynamic convolution (Chen et al., CVPR 2020): K parallel kernels aggregated per sample by a softmax
    attention (with temperature) computed from the globally pooled input; then BN and act."""

    kind: Literal["dynamic_conv"] = "dynamic_conv"
    kernels: PositiveInt = Field(4, le=16)
    """Number of kernels K."""
    reduction: PositiveInt = Field(4, le=64)
    """Hidden width of the attention = max(in_channels // reduction, 4)."""
    temperature: PositiveFloat = 30.0
    """Softmax temperature τ (the paper anneals it from 30 to 1 in the first epochs; set it per stage)."""

    card = BlockCard(
        category="conv",
        paper=Paper("Dynamic Convolution: Attention over Convolution Kernels", "CVPR", 2020,
                    "https://arxiv.org/abs/1912.03458"),
        aliases=("DynamicConv", "DyConv", "CondConv-like"),
        insert_where="replace the convs of a light network (MobileNet, ResNet-18) one for one",
        notes="Per-sample kernels run as one grouped conv with the batch folded into the groups. Temperature "
              "annealing is left to the training loop (it is a plain attribute, module.temperature).")

    def _hidden(self, cin: int) -> int:
        return max(cin // self.reduction, 4)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        t, k = Tally(), self.kernel_size
        t.conv((b, c, 1, 1), self._hidden(c), 1)
        t.conv((b, self._hidden(c), 1, 1), self.kernels, 1)
        t.matmul(1, b, self.kernels, self.out_channels * c * k * k)
        t.conv(in_shapes[0], self.out_channels, k, self.stride)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return DynamicConv(c, self.out_channels, self.kernel_size, self.stride, self.kernels, self._hidden(c),
                           self.temperature, self.act)
