"""Up-sampling: U-Net's decoder step (`up`: upsample, join a named skip, convs) and plain interpolation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import PositiveFloat, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..errors import ShapeError
from ..registry import register_block
from .layers import ActName, NormName, get_act, get_norm
from .merge import Policy, aligned_size, fit_spatial
from .ops import conv_macs, conv_t_macs

__all__ = ["UpSpec", "UpBlock", "InterpolateSpec"]


class UpBlock(nn.Module):
    """`up` (transposed conv or interpolation) → fit to the skip → cat([skip, x]) → `conv` (a flat Sequential)."""

    def __init__(self, up: nn.Module, conv: nn.Module, policy: str) -> None:
        super().__init__()
        self.up, self.conv, self.policy = up, conv, policy

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.policy == "pad":  # x to the skip's size (milesial's U-Net)
            x = fit_spatial(x, skip.shape[-2], skip.shape[-1])
        elif self.policy == "crop":  # both to the smaller size (the U-Net paper's crop)
            h, w = min(x.shape[-2], skip.shape[-2]), min(x.shape[-1], skip.shape[-1])
            x, skip = fit_spatial(x, h, w), fit_spatial(skip, h, w)
        return self.conv(torch.cat([skip, x], dim=1))


@register_block
class UpSpec(BlockSpec):
    """U-Net decoder step. `from: [below, skip]`: upsample `below` ×2, concat with `skip`, then conv units."""

    kind: Literal["up"] = "up"
    card = BlockCard("up", aliases=("Upsample", "UpBlock"), insert_where="in decoders and necks (U-Net, FPN)")
    out_channels: PositiveInt
    """Width of the convs after the concat."""
    mode: Literal["transpose", "bilinear", "nearest"] = "transpose"
    """2×2 stride-2 transposed conv, or interpolation (channels unchanged)."""
    up_channels: PositiveInt | None = None
    """Output channels of the transposed conv; default half its input."""
    policy: Policy = "pad"
    """When the upsampled size differs from the skip's (odd sizes): pad, crop, or error."""
    convs: PositiveInt = 2
    """Number of 3×3 conv units after the concat."""
    bias: bool = False
    """Bias of the 3×3 convs."""
    norm: NormName = "batchnorm"
    """Norm of the conv units."""
    act: ActName = "relu"
    """Activation of the conv units."""

    arity = 2
    channel_fields = ("out_channels", "up_channels")

    def _up_channels(self, cin: int) -> int:
        if self.mode != "transpose":
            return cin
        return self.up_channels or max(cin // 2, 1)

    def _joined(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        (b, c, h, w), skip = in_shapes
        up = (b, self._up_channels(c), 2 * h, 2 * w)
        if skip[0] != b:
            raise ShapeError("'up' inputs differ in batch", in_shapes=in_shapes)
        try:
            size = aligned_size(self.kind, [skip, up], self.policy)
        except ShapeError as err:
            err.message = f"upsampled input {up[2]}×{up[3]} does not match skip {skip[2]}×{skip[3]}"
            raise
        h2, w2 = size if size is not None else skip[-2:]
        return (b, skip[1] + up[1], h2, w2)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        b, _, h, w = self._joined(in_shapes)
        return (b, self.out_channels, h, w)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        total = conv_t_macs(x, self._up_channels(x[1]), (2, 2)) if self.mode == "transpose" else 0
        b, cin, h, w = self._joined(in_shapes)
        for _ in range(self.convs):
            total += conv_macs((b, self.out_channels, h, w), cin, (3, 3))
            cin = self.out_channels
        return total

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cin = in_shapes[0][1]
        if self.mode == "transpose":
            up: nn.Module = nn.ConvTranspose2d(cin, self._up_channels(cin), 2, stride=2)
        else:
            up = nn.Upsample(scale_factor=2, mode=self.mode, align_corners=True if self.mode == "bilinear" else None)
        layers: list[nn.Module] = []
        c = self._joined(in_shapes)[1]
        for _ in range(self.convs):
            layers += [nn.Conv2d(c, self.out_channels, 3, padding=1, bias=self.bias)]
            if self.norm != "none":
                layers.append(get_norm(self.norm, self.out_channels))
            layers.append(get_act(self.act, inplace=True))
            c = self.out_channels
        return UpBlock(up, nn.Sequential(*layers), self.policy)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 8}, [[(2, 16, 4, 4), (2, 8, 8, 8)], [(1, 16, 3, 3), (1, 8, 7, 7)]]


@register_block
class InterpolateSpec(BlockSpec):
    """Resize `b c h w` by a scale factor (nearest, bilinear or bicubic)."""

    kind: Literal["interpolate"] = "interpolate"
    card = BlockCard("up", aliases=("Interpolate", "nn.Upsample"))
    scale: PositiveFloat = 2.0
    """Scale factor for h and w."""
    mode: Literal["nearest", "bilinear", "bicubic"] = "nearest"
    """Interpolation mode."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, c, h, w = in_shapes[0]
        return (b, c, int(h * self.scale), int(w * self.scale))

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        align = False if self.mode != "nearest" else None
        return nn.Upsample(scale_factor=self.scale, mode=self.mode, align_corners=align)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"scale": 2, "mode": "bilinear"}, [[(2, 3, 4, 4)], [(1, 3, 5, 7)]]
