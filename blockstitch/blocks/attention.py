"""Plug-and-play attention for `b c h w` features: SE, CBAM, ECA and coordinate attention.

These wrap `timm.layers` (the modules themselves are timm's, so SE-ResNet-50 matches timm parameter for
parameter); the spec adds validation, the analytic shape and MACs, and plain names for the knobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Paper, Shape, paper_names
from ..registry import register_block
from .layers import ActName, get_act
from .ops import make_divisible

__all__ = ["SESpec", "CBAMSpec", "ECASpec", "CoordAttnSpec"]


class _ChannelAttnSpec(BlockSpec):
    """Shared by attention blocks that keep the shape of a `b c h w` input."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        return tuple(in_shapes[0])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 32, 7, 7)], [(1, 32, 9, 5)]]


def _odd_kernel(value: int | None, name: str) -> int | None:
    """A 'same' padding of (k - 1) // 2 keeps the size only for an odd kernel (timm pads so)."""
    if value is not None and value % 2 == 0:
        raise ValueError(f"{name} must be odd to keep the size, got {value} (try {value + 1})")
    return value


def _act_class(name: str) -> type[nn.Module]:
    return type(get_act(name))


@register_block
class SESpec(_ChannelAttnSpec):
    """Squeeze-and-Excitation (Hu et al.): global pool → 1×1 reduce → act → 1×1 expand → sigmoid gate."""

    kind: Literal["se"] = "se"
    card = BlockCard(
        "attention",
        paper=Paper("Squeeze-and-Excitation Networks", "CVPR", 2018, "https://arxiv.org/abs/1709.01507"),
        aliases=("SE", "SEAttention", "SEModule", "SELayer", "SqueezeExcite", "SENet"),
        insert_where="at the end of each residual branch, before the addition (SE-ResNet); or after a backbone stage",
        notes="timm's SEModule; the hidden width is rounded to `divisor` (8) as in timm, the paper uses c/r exactly.",
    )
    reduction: PositiveFloat = 16
    """Channel reduction ratio r (hidden = channels / r, rounded to `divisor`)."""
    divisor: PositiveInt = 8
    """Round the hidden width to a multiple of this (timm's default; 1 = no rounding)."""
    act: ActName = "relu"
    """Activation between the two 1×1 convs."""

    def hidden(self, channels: int) -> int:
        """Hidden width for `channels` input channels."""
        return make_divisible(channels / self.reduction, self.divisor, round_limit=0.0)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        return 2 * b * c * self.hidden(c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        from timm.layers import SEModule  # the module is timm's; imported when one is built

        return SEModule(c, rd_channels=self.hidden(c), act_layer=_act_class(self.act))


@register_block
class CBAMSpec(_ChannelAttnSpec):
    """CBAM (Woo et al.): channel attention from avg- and max-pooled MLP, then a 7×7 spatial attention."""

    kind: Literal["cbam"] = "cbam"
    card = BlockCard(
        "attention",
        paper=Paper("CBAM: Convolutional Block Attention Module", "ECCV", 2018, "https://arxiv.org/abs/1807.06521"),
        aliases=("CBAM", "CBAMBlock", "CbamModule"),
        insert_where="at the end of each residual branch, before the addition; YOLO forks put it after a neck C2f/C3",
        notes="timm's CbamModule; MLP biases off by default (`bias: true` gives the paper's).",
    )
    reduction: PositiveFloat = 16
    """Channel reduction ratio of the shared MLP."""
    divisor: PositiveInt = 1
    """Round the hidden width to a multiple of this."""
    spatial_kernel: PositiveInt = 7
    """Kernel of the spatial attention conv (odd, so the spatial size is kept)."""

    @field_validator("spatial_kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        return _odd_kernel(value, "spatial_kernel")  # type: ignore[return-value]
    act: ActName = "relu"
    """Activation inside the channel MLP."""
    bias: bool = False
    """Biases in the channel MLP (the paper has them; timm's default has none)."""

    def hidden(self, channels: int) -> int:
        """Hidden width of the channel MLP."""
        return make_divisible(channels / self.reduction, self.divisor, round_limit=0.0)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        channel = 2 * (2 * b * c * self.hidden(c))  # the MLP runs on the avg- and on the max-pooled vector
        return channel + b * h * w * 2 * self.spatial_kernel**2

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        from timm.layers.cbam import CbamModule

        return CbamModule(c, rd_channels=self.hidden(c), spatial_kernel_size=self.spatial_kernel,
                          act_layer=_act_class(self.act), mlp_bias=self.bias)


@register_block
class ECASpec(_ChannelAttnSpec):
    """Efficient Channel Attention (Wang et al.): a 1-d conv across pooled channels; k adapts to channels."""

    kind: Literal["eca"] = "eca"
    card = BlockCard(
        "attention",
        paper=Paper("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
                    "CVPR", 2020, "https://arxiv.org/abs/1910.03151"),
        aliases=("ECA", "ECAAttention", "ECANet", "EcaModule", "eca_layer", "EfficientChannelAttention"),
        insert_where="at the end of each residual branch, before the addition; after backbone stages in YOLO forks",
        notes="timm's EcaModule; kernel from the channel count with gamma=2, b=1.",
    )
    kernel_size: PositiveInt | None = Field(None, validation_alias=paper_names("kernel_size", "k_size"))
    """Kernel of the 1-d conv (odd, so the channel count is kept); default from the channel count (γ=2, b=1 as in
    the paper). The paper's code (``eca_layer(channel, k_size)``) calls it ``k_size``."""

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int | None) -> int | None:
        return _odd_kernel(value, "kernel_size")

    def kernel(self, channels: int) -> int:
        """The (odd) kernel size used for `channels`."""
        if self.kernel_size is not None:
            return self.kernel_size
        t = int(abs(math.log(channels, 2) + 1) / 2)
        return max(t if t % 2 else t + 1, 3)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        return b * c * self.kernel(c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        from timm.layers import EcaModule

        # timm recomputes the kernel from `channels` when it is given, ignoring `kernel_size`: pass the kernel only
        return EcaModule(None, kernel_size=self.kernel(c))


@register_block
class CoordAttnSpec(_ChannelAttnSpec):
    """Coordinate attention (Hou et al.): pooled along H and along W, a shared 1×1 conv, two gates."""

    kind: Literal["coord_attn"] = "coord_attn"
    card = BlockCard(
        "attention",
        paper=Paper("Coordinate Attention for Efficient Mobile Network Design",
                    "CVPR", 2021, "https://arxiv.org/abs/2103.02907"),
        aliases=("CoordAtt", "CA", "CoordAttention", "CoordAttn"),
        insert_where="inside inverted residuals after the depthwise conv (MobileNetV2); after backbone stages "
                     "or in the neck",
        notes="timm's CoordAttn (hidden = max(8, c/r)).",
    )
    reduction: PositiveFloat = 32
    """Channel reduction ratio (hidden = max(8, channels / r) as in the paper)."""
    min_hidden: PositiveInt = 8
    """Smallest hidden width."""
    act: ActName = "hardswish"
    """Activation after the shared conv."""

    def hidden(self, channels: int) -> int:
        """Hidden width of the shared conv."""
        return max(self.min_hidden, int(channels / self.reduction))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return 2 * b * (h + w) * c * self.hidden(c)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        from timm.layers.coord_attn import CoordAttn

        return CoordAttn(c, rd_channels=self.hidden(c), bias=True, act_layer=_act_class(self.act))
