"""EfficientNet's MBConv: an inverted residual with SiLU, squeeze-excitation and stochastic depth.

The hidden width is rounded to a multiple of 8 (`make_divisible(in × expand_ratio)`), the squeeze width is a
quarter of the block's *input* width, and a residual block drops its branch per sample while training
(stochastic depth; the network's `drop_path_rate` ramps it over the blocks). The B1–B7 scalings are the
same spec with `width`, `depth` and `depth_rounding: ceil` (see specs/efficientnet_b*.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, Paper, Shape
from ..registry import register_block
from .mobilenet import ExpandedSpec, InvertedResidual, SqueezeExcite, conv_unit, make_divisible, unit_macs, zero_last_norm

__all__ = ["MBConvSpec", "StochasticDepth"]


class StochasticDepth(nn.Module):
    """Drops the whole residual branch of a sample with probability ``p`` while training, and scales the
    kept ones by 1 / (1 − p), so the expectation is unchanged; the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # one draw per sample
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@register_block
class MBConvSpec(ExpandedSpec):
    """EfficientNet MBConv: 1×1 expand → k×k depthwise (strided) → SE → 1×1 project, + stochastic-depth residual."""

    kind: Literal["mbconv"] = "mbconv"
    card = BlockCard(
        "block",
        paper=Paper("EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", "ICML", 2019,
                    "https://arxiv.org/abs/1905.11946"),
        aliases=("MBConv", "MBConvBlock", "InvertedResidual (EfficientNet)"),
        insert_where="stacked in EfficientNet stages; a stride-1 block of equal width adds its input")
    out_channels: PositiveInt
    """Output channels (after the 1×1 project)."""
    stride: PositiveInt = 1
    """Stride of the depthwise conv (the first block of a `repeat` stack keeps it)."""
    kernel_size: PositiveInt = 3
    """Kernel of the depthwise conv (3 or 5)."""
    expand_ratio: PositiveFloat = 6
    """Hidden width = make_divisible(input channels × expand_ratio, 8); no expand conv when it equals the input."""
    se_ratio: float = Field(0.25, ge=0.0, le=1.0)
    """Squeeze width = max(1, int(input channels × se_ratio)) — of the block's input, not its hidden width;
    0 = no squeeze-excite."""
    act: Literal["silu", "relu", "relu6", "hardswish", "gelu"] = "silu"
    """Activation after expand and depthwise, and inside the SE."""
    norm_eps: PositiveFloat = Field(1e-5, le=0.1)
    """BatchNorm epsilon (0.001 in torchvision's B5–B7)."""
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth: probability of dropping the residual branch of a sample while training (only
    blocks with a residual have one); usually set by the network's `drop_path_rate`."""

    channel_fields = ("out_channels",)

    def hidden(self, cin: int) -> int:
        """The hidden (expanded) width for ``cin`` input channels."""
        return make_divisible(cin * self.expand_ratio)

    def squeeze(self, cin: int) -> int:
        """The SE's squeeze width (0 when there is no SE)."""
        return max(1, int(cin * self.se_ratio)) if self.se_ratio > 0 else 0

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        total, _ = unit_macs(x, self._units(x[1]))
        return total + 2 * x[0] * self.hidden(x[1]) * self.squeeze(x[1])

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cin = in_shapes[0][1]
        hid = self.hidden(cin)
        layers: list[nn.Module] = []
        if hid != cin:
            layers.append(conv_unit(cin, hid, 1, 1, 1, self.act, self.norm_eps))
        layers.append(conv_unit(hid, hid, self.kernel_size, self.stride, hid, self.act, self.norm_eps))
        if self.squeeze(cin):
            layers.append(SqueezeExcite(hid, self.squeeze(cin), self.act, "sigmoid"))
        layers.append(conv_unit(hid, self.out_channels, 1, 1, 1, None, self.norm_eps))
        residual = self.stride == 1 and cin == self.out_channels
        return InvertedResidual(layers, residual, StochasticDepth(self.drop_path) if residual else None)

    def init_identity(self, module: nn.Module) -> bool:
        return zero_last_norm(module)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8, "expand_ratio": 4, "kernel_size": 5, "drop_path": 0.1}, [
            [(2, 8, 9, 9)], [(1, 8, 6, 7)]]
