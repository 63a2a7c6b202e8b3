"""Two papers, one name: SCConv 2020 (self-calibrated convolutions, Liu et al.) and SCConv 2023 (spatial and
channel reconstruction convolution, Li et al.). Distinct kinds: ``scconv_2020`` and ``scconv_2023``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...errors import ShapeError
from ...registry import register_block
from ._parts import SameShapeSpec, Tally, cna, need_divisible

__all__ = ["SelfCalibratedConv", "SCConv2023", "SCConv2020Spec", "SCConv2023Spec"]


class SelfCalibratedConv(nn.Module):
    """Half the channels through a plain 3×3 conv (k1); the other half calibrated: a 3×3 conv (k3) gated by
    ``sigmoid(x + up(k2(avgpool_r(x))))`` — a view from a r× coarser map —, then a 3×3 conv (k4)."""

    def __init__(self, cin: int, cout: int, stride: int, r: int) -> None:
        super().__init__()
        self.c1, self.r = cin // 2, r
        o1 = cout // 2
        self.k1 = cna(cin - self.c1, cout - o1, 3, stride, act="none")
        self.k2 = cna(self.c1, self.c1, 3, act="none")
        self.k3 = cna(self.c1, self.c1, 3, act="none")
        self.k4 = cna(self.c1, o1, 3, stride, act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, :self.c1], x[:, self.c1:]
        coarse = self.k2(F.avg_pool2d(x1, self.r, self.r, ceil_mode=True))
        gate = torch.sigmoid(x1 + F.interpolate(coarse, size=x1.shape[-2:]))
        y1 = self.k4(self.k3(x1) * gate)
        return torch.cat((y1, self.k1(x2)), 1)


@register_block
class SCConv2020Spec(BlockSpec):
    """Self-calibrated convolution (Liu et al., CVPR 2020): one half of the channels is calibrated by a gate
    computed at r× lower resolution, enlarging each position's field of view; the other half is a plain conv."""

    kind: Literal["scconv_2020"] = "scconv_2020"
    out_channels: PositiveInt
    """Output channels (≥ 2: half come from each path)."""
    stride: PositiveInt = Field(1, le=4)
    """Stride of the two output convs (k1, k4)."""
    pooling_r: PositiveInt = Field(4, le=16)
    """Down-sampling rate r of the calibration branch."""

    channel_fields = ("out_channels",)

    card = BlockCard(
        category="conv",
        paper=Paper("Improving Convolutional Networks with Self-Calibrated Convolutions", "CVPR", 2020,
                    "https://openaccess.thecvf.com/content_CVPR_2020/html/Liu_Improving_Convolutional_Networks_"
                    "With_Self-Calibrated_Convolutions_CVPR_2020_paper.html"),
        aliases=("SCConv", "SCNet", "SelfCalibratedConv"),
        channel_rule="min:2",
        insert_where="replace the 3×3 conv of a ResNet bottleneck (SCNet)",
        notes="Not SCConv 2023 (spatial and channel reconstruction): that is `scconv_2023`. The r× pooling uses "
              "ceil mode and the coarse map is upsampled to the exact input size, so any size works.")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        if in_shapes[0][1] < 2 or self.out_channels < 2:
            raise ShapeError("'scconv_2020' splits the channels in two: in and out channels must be ≥ 2",
                             expected="channels ≥ 2", found=f"in={in_shapes[0][1]}, out={self.out_channels}",
                             in_shapes=in_shapes)
        return Tally().conv(in_shapes[0], self.out_channels, 3, self.stride)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        self.out_shape(in_shapes)
        b, c, h, w = in_shapes[0]
        c1, o1, r, t = c // 2, self.out_channels // 2, self.pooling_r, Tally()
        t.conv((b, c - c1, h, w), self.out_channels - o1, 3, self.stride)
        t.conv((b, c1, -(-h // r), -(-w // r)), c1, 3)
        t.conv((b, c1, h, w), c1, 3)
        t.conv((b, c1, h, w), o1, 3, self.stride)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self.out_shape(in_shapes)
        return SelfCalibratedConv(in_shapes[0][1], self.out_channels, self.stride, self.pooling_r)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16}, [[(2, 16, 8, 8)], [(1, 15, 13, 9)]]


class SCConv2023(nn.Module):
    """SRU (separate informative from redundant positions with GroupNorm's γ, cross-reconstruct) then CRU
    (split channels α : 1−α, squeeze, rich GWC+PWC vs. cheap PWC path, fuse with a per-channel softmax)."""

    def __init__(self, c: int, groups_gn: int, threshold: float, alpha: float, squeeze: int, gwc_groups: int,
                 k: int) -> None:
        super().__init__()
        self.gn, self.threshold = nn.GroupNorm(groups_gn, c), threshold
        self.up = int(alpha * c)
        up_sq, low_sq = self.up // squeeze, (c - self.up) // squeeze
        self.squeeze_up = nn.Conv2d(self.up, up_sq, 1, bias=False)
        self.squeeze_low = nn.Conv2d(c - self.up, low_sq, 1, bias=False)
        self.gwc = nn.Conv2d(up_sq, c, k, 1, k // 2, groups=gwc_groups)
        self.pwc1 = nn.Conv2d(up_sq, c, 1, bias=False)
        self.pwc2 = nn.Conv2d(low_sq, c - low_sq, 1, bias=False)

    def sru(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self.gn.weight / self.gn.weight.sum()  # W_γ: each channel's share of GroupNorm's scales
        w = torch.sigmoid(self.gn(x) * gamma.view(1, -1, 1, 1))
        hard = (w >= self.threshold).to(w.dtype)
        informative = hard + (w - w.detach())  # the paper's 1/0 gate, trained straight-through the sigmoid
        x1, x2 = informative * x, (1 - informative) * x
        a1, b1 = x1.chunk(2, dim=1)
        a2, b2 = x2.chunk(2, dim=1)
        return torch.cat((a1 + b2, a2 + b1), 1)  # cross-reconstruction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sru(x)
        up, low = self.squeeze_up(x[:, :self.up]), self.squeeze_low(x[:, self.up:])
        y1 = self.gwc(up) + self.pwc1(up)
        y2 = torch.cat((self.pwc2(low), low), 1)
        s = torch.stack((y1.mean((2, 3)), y2.mean((2, 3))))  # 2 b c: pooled descriptor of each path
        beta = s.softmax(dim=0)[..., None, None]
        return beta[0] * y1 + beta[1] * y2


@register_block
class SCConv2023Spec(SameShapeSpec):
    """SCConv (Li et al., CVPR 2023): spatial reconstruction unit (SRU) then channel reconstruction unit (CRU),
    a drop-in for a 3×3 conv that removes spatial and channel redundancy."""

    kind: Literal["scconv_2023"] = "scconv_2023"
    group_num: PositiveInt = Field(16, le=64)
    """GroupNorm groups of the SRU."""
    gate_threshold: float = Field(0.5, gt=0, lt=1)
    """Gate threshold of the SRU."""
    alpha: float = Field(0.5, gt=0, lt=1)
    """Split ratio α of the CRU."""
    squeeze: PositiveInt = Field(2, le=16)
    """Squeeze ratio r of the CRU."""
    gwc_groups: PositiveInt = Field(2, le=64)
    """Groups of the CRU's group-wise conv."""
    kernel_size: Literal[1, 3, 5, 7] = 3
    """Kernel of the group-wise conv."""

    card = BlockCard(
        category="conv",
        paper=Paper("SCConv: Spatial and Channel Reconstruction Convolution for Feature Redundancy", "CVPR", 2023,
                    "https://openaccess.thecvf.com/content/CVPR2023/html/Li_SCConv_Spatial_and_Channel_"
                    "Reconstruction_Convolution_for_Feature_Redundancy_CVPR_2023_paper.html"),
        aliases=("SCConv", "SRU", "CRU", "ScConv"),
        channel_rule="multiple_of:16",
        insert_where="replace the 3×3 conv of a ResNet bottleneck or a C2f bottleneck",
        notes="Not SCConv 2020 (self-calibrated): that is `scconv_2020`. The SRU's hard 1/0 gate of the paper is "
              "kept in the forward pass and trained straight-through (else GroupNorm's γ gets no gradient). The "
              "CRU's fusion is the paper's per-channel softmax over the two paths. Channels must divide by "
              "group_num and leave the squeezed widths divisible by gwc_groups (multiple_of:16 at the defaults).")

    def _check(self, in_shapes: Sequence[Shape]) -> tuple[int, int, int]:
        self.out_shape(in_shapes)
        c = in_shapes[0][1]
        need_divisible(self.kind, "channels", c, self.group_num, in_shapes)
        need_divisible(self.kind, "channels", c, 2, in_shapes)
        up = int(self.alpha * c)
        up_sq, low_sq = up // self.squeeze, (c - up) // self.squeeze
        if up_sq < 1 or low_sq < 1 or up_sq % self.gwc_groups or c % self.gwc_groups:
            raise ShapeError(f"'scconv_2023': {c} channels give squeezed widths {up_sq}, {low_sq}; both must be "
                             f"≥ 1 and the first divisible by gwc_groups={self.gwc_groups}", in_shapes=in_shapes)
        return up, up_sq, low_sq

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        up, up_sq, low_sq = self._check(in_shapes)
        b, c, h, w = in_shapes[0]
        t = Tally()
        t.conv((b, up, h, w), up_sq, 1)
        t.conv((b, c - up, h, w), low_sq, 1)
        t.conv((b, up_sq, h, w), c, self.kernel_size, g=self.gwc_groups)
        t.conv((b, up_sq, h, w), c, 1)
        t.conv((b, low_sq, h, w), c - low_sq, 1)
        return t.macs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        self._check(in_shapes)
        return SCConv2023(in_shapes[0][1], self.group_num, self.gate_threshold, self.alpha, self.squeeze,
                          self.gwc_groups, self.kernel_size)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 32, 8, 8)], [(1, 16, 13, 9)]]
