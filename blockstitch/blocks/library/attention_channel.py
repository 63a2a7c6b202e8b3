"""Channel attention from pooled statistics: eSE (VoVNetV2), FcaNet, SRM and gather-excite. Each is written from
its paper; every one gives back a `b c h w` map of its input's shape.

None has a zero-able last layer that makes it the identity (their gates are sigmoids of a learnt map), so for
identity init the stitcher wraps them in a zero-gated residual. The norm on SRM's pooled vector is optional and
off by default: a BatchNorm over one pooled vector per sample fails at batch 1 in training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from ...blockspec import BlockCard, Paper, Shape
from ...registry import register_block
from ._attn_base import GateSpec, hard_sigmoid

__all__ = ["ESESpec", "FcaSpec", "SRMSpec", "GatherExciteSpec"]


class EffectiveSE(nn.Module):
    """eSE: global average pool → one 1×1 conv (no reduction) → hard sigmoid → scale the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * hard_sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


@register_block
class ESESpec(GateSpec):
    """Effective Squeeze-Excitation (Lee & Park, CenterMask/VoVNetV2): SE with one full-width 1×1 conv, so no
    channel information is lost to a reduction. Example: ``{kind: ese}``."""

    kind: Literal["ese"] = "ese"
    card = BlockCard(
        "attention",
        paper=Paper("CenterMask: Real-Time Anchor-Free Instance Segmentation", "CVPR", 2020,
                    "https://arxiv.org/abs/1911.06667"),
        aliases=("eSE", "ESE", "EffectiveSE", "EffectiveSEModule", "eSEModule"),
        insert_where="at the end of each OSA module (VoVNetV2), or after a backbone stage",
    )

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        return b * c * c

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return EffectiveSE(in_shapes[0][1])


# FcaNet's ranking of the 7×7 2-d DCT frequencies by single-frequency ImageNet accuracy ("top" selection, paper §4).
_TOP_U = (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1)
_TOP_V = (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3)


def _dct_basis(freq: int, pos: int, length: int) -> float:
    value = math.cos(math.pi * freq * (pos + 0.5) / length) / math.sqrt(length)
    return value * math.sqrt(2) if freq else value


class FrequencyChannelAttention(nn.Module):
    """FcaNet: each channel part is pooled with one 2-d DCT basis (frequency 0 is average pooling), then an SE MLP."""

    def __init__(self, c: int, hidden: int, frequencies: int, size: int) -> None:
        super().__init__()
        self.size = size
        weight = torch.zeros(c, size, size)
        part = c // frequencies
        for i in range(frequencies):
            u, v = _TOP_U[i] * size // 7, _TOP_V[i] * size // 7
            for y in range(size):
                for x in range(size):
                    weight[i * part:(i + 1) * part, y, x] = _dct_basis(u, y, size) * _dct_basis(v, x, size)
        self.register_buffer("dct", weight)
        self.fc = nn.Sequential(nn.Linear(c, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, c, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, self.size)  # the DCT is defined on a size×size map
        y = (pooled * self.dct).sum((2, 3))  # b c: one frequency component per channel
        return x * torch.sigmoid(self.fc(y))[:, :, None, None]


@register_block
class FcaSpec(GateSpec):
    """Frequency Channel Attention (Qin et al., FcaNet): SE whose squeeze is a multi-spectral 2-d DCT instead of
    the mean (the mean is its lowest frequency). Example: ``{kind: fca, frequencies: 16}``."""

    kind: Literal["fca"] = "fca"
    card = BlockCard(
        "attention",
        paper=Paper("FcaNet: Frequency Channel Attention Networks", "ICCV", 2021, "https://arxiv.org/abs/2012.11879"),
        aliases=("FcaNet", "FCA", "FcaLayer", "MultiSpectralAttentionLayer", "MultiSpectralAttention"),
        channel_rule="multiple_of:frequencies",
        insert_where="at the end of each residual branch, before the addition (like SE)",
        notes="The 'top-k' frequency selection of the paper; inputs of any size are average-pooled to "
              "dct_size×dct_size first, as the paper's code does for non-7×7 maps.",
    )
    reduction: PositiveInt = Field(16, le=1024)
    """Channel reduction of the MLP."""
    frequencies: Literal[1, 2, 4, 8, 16, 32] = 16
    """Number of DCT frequencies (the top-k of the paper's ranking); the channels split into this many parts."""
    dct_size: PositiveInt = Field(7, le=64)
    """Side of the DCT grid."""

    @property
    def channel_multiple(self) -> int:
        return self.frequencies

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c = in_shapes[0][:2]
        return 2 * b * c * max(1, c // self.reduction)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = self.check(in_shapes)[1]
        return FrequencyChannelAttention(c, max(1, c // self.reduction), self.frequencies, self.dct_size)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"frequencies": 4, "reduction": 4}, [[(2, 16, 7, 7)], [(1, 16, 13, 9)]]


class StyleRecalibration(nn.Module):
    """SRM: style pooling (mean, std per channel) → channel-wise fully connected → [BN] → sigmoid gate."""

    def __init__(self, c: int, norm: bool) -> None:
        super().__init__()
        self.cfc = nn.Parameter(torch.zeros(c, 2))
        self.norm = nn.BatchNorm1d(c) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean((2, 3))
        std = (x.var((2, 3), unbiased=False) + 1e-5).sqrt()  # finite at 1×1, unlike the unbiased std
        z = (torch.stack((mean, std), -1) * self.cfc).sum(-1)  # b c: one weight pair per channel
        return x * torch.sigmoid(self.norm(z))[:, :, None, None]


@register_block
class SRMSpec(GateSpec):
    """Style-based Recalibration Module (Lee et al.): gates channels by their style — mean and standard
    deviation — combined by a per-channel pair of weights. Example: ``{kind: srm}``."""

    kind: Literal["srm"] = "srm"
    card = BlockCard(
        "attention",
        paper=Paper("SRM: A Style-based Recalibration Module for Convolutional Neural Networks", "ICCV", 2019,
                    "https://arxiv.org/abs/1903.10829"),
        aliases=("SRM", "SRMLayer", "StyleRecalibration"),
        insert_where="at the end of each residual branch, before the addition (like SE)",
        notes="The paper's BatchNorm after the channel-wise FC is `norm: true`; off by default because it fails "
              "at batch 1 in training. The std is the biased one plus 1e-5, finite at 1×1.",
    )
    norm: bool = False
    """BatchNorm on the integrated style vector (the paper's; fails at batch 1 in training)."""

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0  # elementwise products and sums only

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return StyleRecalibration(in_shapes[0][1], self.norm)


class GatherExcite(nn.Module):
    """Gather (average pool or strided depthwise convs over an extent) → [MLP] → nearest upsample → sigmoid gate."""

    def __init__(self, c: int, extent: int, mode: str, hidden: int | None) -> None:
        super().__init__()
        self.extent, self.mode = extent, mode
        stages = []
        if mode == "conv":
            for i in range(int(math.log2(extent))):
                stages += [nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False), nn.BatchNorm2d(c)]
                if i < int(math.log2(extent)) - 1:
                    stages.append(nn.ReLU())
        self.gather = nn.Sequential(*stages)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, c, 1)) if hidden else \
            nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "conv":
            g = self.gather(x)
        elif self.extent == 0:
            g = x.mean((2, 3), keepdim=True)
        else:
            g = F.avg_pool2d(x, self.extent, self.extent, ceil_mode=True)
        g = self.mlp(g)
        return x * torch.sigmoid(F.interpolate(g, size=x.shape[-2:], mode="nearest"))


@register_block
class GatherExciteSpec(GateSpec):
    """Gather-Excite (Hu et al.): gather context over an extent (GE-θ⁻ average pooling, GE-θ strided depthwise
    convs, GE-θ⁺ with an MLP), excite by a sigmoid of it upsampled. Example: ``{kind: gather_excite, extent: 4}``."""

    kind: Literal["gather_excite"] = "gather_excite"
    card = BlockCard(
        "attention",
        paper=Paper("Gather-Excite: Exploiting Feature Context in Convolutional Neural Networks", "NeurIPS", 2018,
                    "https://arxiv.org/abs/1810.12348"),
        aliases=("GE", "GatherExcite", "GE-theta", "GEtheta"),
        insert_where="at the end of each residual branch, before the addition (like SE)",
        notes="Pure PyTorch. Pooling uses ceil mode, so any size works; the conv gather needs extent 2, 4, 8 or 16.",
    )
    extent: int = Field(0, ge=0, le=64)
    """Gather extent: 0 = global; else the pooling stride (conv mode: 2, 4, 8 or 16)."""
    mode: Literal["pool", "conv"] = "pool"
    """`pool`: parameter-free GE-θ⁻; `conv`: GE-θ, log2(extent) stride-2 depthwise 3×3 convs with BN."""
    mlp: bool = False
    """Add the 1×1 MLP of GE-θ⁺ after the gather."""
    reduction: PositiveInt = Field(16, le=1024)
    """Channel reduction of the MLP."""

    @model_validator(mode="after")
    def _conv_extent(self) -> GatherExciteSpec:
        if self.mode == "conv" and self.extent not in (2, 4, 8, 16):
            raise ValueError(f"mode conv needs extent 2, 4, 8 or 16 (got {self.extent})")
        return self

    def _gathered(self, h: int, w: int) -> tuple[int, int]:
        if self.mode == "pool" and self.extent == 0:
            return 1, 1
        if self.mode == "pool":
            return -(-h // self.extent), -(-w // self.extent)
        for _ in range(int(math.log2(self.extent))):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = self.check(in_shapes)
        total, sh, sw = 0, h, w
        if self.mode == "conv":
            for _ in range(int(math.log2(self.extent))):
                sh, sw = (sh + 1) // 2, (sw + 1) // 2
                total += b * c * sh * sw * 9
        gh, gw = self._gathered(h, w)
        return total + (2 * b * gh * gw * c * max(1, c // self.reduction) if self.mlp else 0)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        c = in_shapes[0][1]
        return GatherExcite(c, self.extent, self.mode, max(1, c // self.reduction) if self.mlp else None)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"extent": 4, "mode": "conv", "mlp": True, "reduction": 4}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
