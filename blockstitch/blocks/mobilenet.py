"""MobileNet's inverted residual (V2, V3) and squeeze-excitation with a hard-sigmoid gate (V3).

An inverted residual widens (1×1 expand), filters each channel alone (k×k depthwise, where the stride sits),
optionally gates the channels (squeeze-excite), and narrows again (1×1 project, no activation); a stride-1
block that keeps the width adds its input. The units are named and ordered as torchvision's, so a
torchvision MobileNet's weights transfer one to one (`transfer_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape
from ..registry import register_block
from .conv import ConvNormAct
from .layers import get_act
from .ops import conv_macs, spatial

__all__ = ["InvertedResidualSpec", "InvertedResidual", "SqueezeExciteSpec", "SqueezeExcite", "make_divisible",
           "unit_macs"]

Act = Literal["relu", "relu6", "hardswish", "silu", "gelu"]
_V3 = Paper("Searching for MobileNetV3", "ICCV", 2019, "https://arxiv.org/abs/1905.02244")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), never losing over 10%.

    >>> make_divisible(72 / 4), make_divisible(35.2)
    (24, 32)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def unit_macs(in_shape: Shape, units: Sequence[tuple[int, int, int, int]]) -> tuple[int, Shape]:
    """MACs and output shape of a chain of convs given as ``(out_channels, kernel, stride, groups)``.

    >>> unit_macs((1, 8, 4, 4), [(16, 1, 1, 1)])
    (2048, (1, 16, 4, 4))
    """
    total, shape = 0, tuple(in_shape)
    for cout, k, s, g in units:
        cin = shape[1]
        shape = (shape[0], cout, *spatial("conv", shape, (k, k), (s, s), ((k - 1) // 2,) * 2))
        total += conv_macs(shape, cin, (k, k), g)
    return total, shape


def conv_unit(cin: int, cout: int, kernel: int, stride: int, groups: int, act: str | None, eps: float) -> ConvNormAct:
    """``conv`` (no bias) → ``bn`` → ``act`` (none when ``act`` is None), padding (k − 1) / 2.

    >>> conv_unit(16, 16, 3, 2, 16, "hardswish", 1e-3).conv
    Conv2d(16, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=16, bias=False)
    """
    conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return ConvNormAct(conv, nn.BatchNorm2d(cout, eps=eps), None if act is None else get_act(act, inplace=True))


class SqueezeExcite(nn.Module):
    """``x × gate(fc2(act(fc1(mean(x)))))`` with 1×1 convs ``fc1``/``fc2`` (torchvision's names)."""

    def __init__(self, channels: int, squeeze: int, act: str, gate: str) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = get_act(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = get_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)  # b c h w -> b c 1 1
        return x * self.gate(self.fc2(self.act(self.fc1(scale))))


@register_block
class SqueezeExciteSpec(BlockSpec):
    """Squeeze-excitation as MobileNetV3 has it: pool → 1×1 squeeze → ReLU → 1×1 excite → hard-sigmoid gate."""

    kind: Literal["squeeze_excite"] = "squeeze_excite"
    card = BlockCard("attention", paper=_V3, aliases=("SqueezeExcitation", "SEHard", "hsigmoid SE"),
                     insert_where="after the depthwise conv of an inverted residual",
                     notes="hidden = make_divisible(channels / reduction, divisor); timm's `se` rounds down instead")
    reduction: PositiveFloat = 4
    """Squeeze width = make_divisible(channels / reduction, divisor) unless `squeeze_channels` is given."""
    divisor: PositiveInt = 8
    """Round the squeeze width to a multiple of this (1 = no rounding)."""
    squeeze_channels: PositiveInt | None = None
    """Explicit squeeze width (EfficientNet's is a quarter of the block's input, not of these channels)."""
    act: Act = "relu"
    """Activation between the two 1×1 convs (ReLU in MobileNetV3, SiLU in EfficientNet)."""
    gate: Literal["hard_sigmoid", "sigmoid"] = "hard_sigmoid"
    """The gate: hard-sigmoid (MobileNetV3, relu6(x + 3) / 6) or sigmoid (SENet, EfficientNet)."""

    def squeeze(self, channels: int) -> int:
        """The squeeze width for ``channels`` input channels."""
        if self.squeeze_channels is not None:
            return self.squeeze_channels
        return make_divisible(int(channels / self.reduction), self.divisor)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return tuple(in_shapes[0])

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        return 2 * b * c * self.squeeze(c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return SqueezeExcite(c, self.squeeze(c), self.act, self.gate)

    def init_identity(self, module: nn.Module) -> bool:
        if self.gate != "hard_sigmoid":
            return False  # a sigmoid never reaches 1: the stitcher wraps the block in a zero-gated residual
        with torch.no_grad():  # fc2 ≡ 3, and hard_sigmoid(3) = relu6(3 + 3) / 6 = 1 exactly: x × 1
            module.fc2.weight.zero_()
            module.fc2.bias.fill_(3.0)
        return True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 24, 5, 5)], [(1, 24, 3, 7)]]


class InvertedResidual(nn.Module):
    """``block`` (expand → depthwise → [se] → project), plus the input when ``use_res_connect``.

    ``stochastic_depth`` (EfficientNet) drops the residual branch per sample while training."""

    def __init__(self, layers: list[nn.Module], use_res_connect: bool, drop: nn.Module | None = None) -> None:
        super().__init__()
        self.block = nn.Sequential(*layers)
        self.use_res_connect = use_res_connect
        if drop is not None:
            self.stochastic_depth = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if not self.use_res_connect:
            return out
        if hasattr(self, "stochastic_depth"):
            out = self.stochastic_depth(out)
        return out + x


def zero_last_norm(module: nn.Module) -> bool:
    """Zero the project norm of a residual inverted-residual block, so it returns its input exactly; False
    (nothing changed) for a block without a residual.

    >>> spec = InvertedResidualSpec(out_channels=8)
    >>> zero_last_norm(spec.build([(1, 8, 4, 4)]))
    True
    """
    if not getattr(module, "use_res_connect", False):
        return False
    norm = module.block[-1].bn
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.zero_()
    return True


class ExpandedSpec(BlockSpec):
    """Shared by inverted residuals and MBConv: 1×1 expand (when the width changes) → k×k depthwise → 1×1
    project. Subclasses declare ``out_channels``, ``kernel_size``, ``stride`` and ``hidden(cin)``."""

    if TYPE_CHECKING:  # the fields every subclass declares (here they would come first in the schema)
        out_channels: int
        kernel_size: int
        stride: int

    def hidden(self, cin: int) -> int:
        """The hidden (expanded) width for ``cin`` input channels."""
        raise NotImplementedError

    def _units(self, cin: int) -> list[tuple[int, int, int, int]]:
        hid = self.hidden(cin)
        expand = [(hid, 1, 1, 1)] if hid != cin else []
        return [*expand, (hid, self.kernel_size, self.stride, hid), (self.out_channels, 1, 1, 1)]

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return unit_macs(in_shapes[0], self._units(in_shapes[0][1]))[1]


@register_block
class InvertedResidualSpec(ExpandedSpec):
    """MobileNetV2/V3 inverted residual: 1×1 expand → k×k depthwise (strided) → [SE] → 1×1 project (+ input)."""

    kind: Literal["inverted_residual"] = "inverted_residual"
    card = BlockCard(
        "block",
        paper=Paper("MobileNetV2: Inverted Residuals and Linear Bottlenecks", "CVPR", 2018,
                    "https://arxiv.org/abs/1801.04381"),
        aliases=("InvertedResidual", "IRB", "MBConv (MobileNet)"),
        insert_where="stacked in mobile backbones; a stride-1 block of equal width adds its input",
        notes="V3's form with `hidden_channels`, `se: true` and `act: hardswish`")
    out_channels: PositiveInt
    """Output channels (after the 1×1 project)."""
    stride: PositiveInt = 1
    """Stride of the depthwise conv (the first block of a `repeat` stack keeps it)."""
    kernel_size: PositiveInt = 3
    """Kernel of the depthwise conv (3 or 5 in MobileNetV3)."""
    expand_ratio: PositiveFloat = 6
    """Hidden width = round(input channels × expand_ratio) (MobileNetV2's t); no expand conv when it equals
    the input width."""
    hidden_channels: PositiveInt | None = None
    """Explicit hidden width, as MobileNetV3's table lists it per block (overrides `expand_ratio`)."""
    se: bool = False
    """Squeeze-excite on the hidden width after the depthwise conv (make_divisible(hidden / 4, 8), ReLU,
    hard-sigmoid), as MobileNetV3."""
    act: Act = "relu6"
    """Activation after expand and depthwise (relu6 in V2; relu or hardswish per block in V3)."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """BatchNorm epsilon (MobileNetV3 uses 0.001)."""

    channel_fields = ("out_channels", "hidden_channels")

    def hidden(self, cin: int) -> int:
        """The hidden (expanded) width for ``cin`` input channels."""
        return self.hidden_channels or int(round(cin * self.expand_ratio))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        total, _ = unit_macs(x, self._units(x[1]))
        if self.se:
            b, hid = x[0], self.hidden(x[1])
            total += 2 * b * hid * make_divisible(hid // 4)
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cin = in_shapes[0][1]
        hid = self.hidden(cin)
        layers: list[nn.Module] = []
        if hid != cin:
            layers.append(conv_unit(cin, hid, 1, 1, 1, self.act, self.norm_eps))
        layers.append(conv_unit(hid, hid, self.kernel_size, self.stride, hid, self.act, self.norm_eps))
        if self.se:
            layers.append(SqueezeExcite(hid, make_divisible(hid // 4), "relu", "hard_sigmoid"))
        layers.append(conv_unit(hid, self.out_channels, 1, 1, 1, None, self.norm_eps))
        return InvertedResidual(layers, self.stride == 1 and cin == self.out_channels)

    def init_identity(self, module: nn.Module) -> bool:
        return zero_last_norm(module)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8, "hidden_channels": 24, "kernel_size": 5, "se": True, "act": "hardswish"}, [
            [(2, 8, 9, 9)], [(1, 8, 6, 7)]]
