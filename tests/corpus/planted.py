"""Modules with exactly one planted defect each (and three healthy look-alikes that must not be flagged).

Each is an ordinary module a paper's repository could contain; the corpus test learns what is true of it by
running it, never from these comments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HardCodedHW(nn.Module):
    """A learned 7×7 position map: only 7×7 inputs keep their shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, channels, 7, 7) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos


class HardCodedH(nn.Module):
    """A position code over rows only: h must be 7, any w."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rows = nn.Parameter(torch.randn(1, channels, 7, 1) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rows


class SquareOnly(nn.Module):
    """Mixes a map with its transpose."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x + x.transpose(-1, -2))


class WindowMultiple(nn.Module):
    """Window attention without padding: h and w must be multiples of 4."""

    def __init__(self, channels: int, window: int = 4) -> None:
        super().__init__()
        self.window, self.qkv = window, nn.Linear(channels, 3 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.window
        t = x.view(b, c, h // k, k, w // k, k).permute(0, 2, 4, 3, 5, 1).reshape(-1, k * k, c)
        q, key, v = self.qkv(t).chunk(3, dim=-1)
        t = F.scaled_dot_product_attention(q, key, v)
        return t.view(b, h // k, w // k, k, k, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class MinSize(nn.Module):
    """An unpadded 5×5 convolution resized back: inputs below 5×5 fail."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.interpolate(self.conv(x), size=x.shape[-2:], mode="nearest")


class HeadsDivide(nn.Module):
    """Four heads by reshaping: channels must be a multiple of 4."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.proj = heads, nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = x.reshape(b, self.heads, c // self.heads, h * w).softmax(-1).reshape(b, c, h, w)
        return self.proj(g * x)


class GroupsDivide(nn.Module):
    """A grouped convolution with 8 groups: channels must be a multiple of 8."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class IgnoresInput(nn.Module):
    """Returns a learned map of the input's shape, whatever the input holds."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.randn(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape).clone()


class BatchMixEval(nn.Module):
    """Normalises with statistics over the batch, in eval too."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x - x.mean(dim=0, keepdim=True))


class WritesInput(nn.Module):
    """Applies an in-place ReLU to the tensor it was given."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.relu_())


class DeadParam(nn.Module):
    """Declares a projection it never calls."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.unused = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class NaNAtSize(nn.Module):
    """Divides by the spatial standard deviation: NaN on a 1×1 map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x / x.std(dim=(2, 3), keepdim=True))


class BNTrainBatch1(nn.Module):
    """BatchNorm on a pooled 1×1 map: training at batch 1 fails."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool, self.bn = nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.bn(self.pool(x)).sigmoid()


class ZeroInitGate(nn.Module):
    """Healthy: a residual branch behind a zero-initialised gate (alive: the gate gets a gradient)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate * self.conv(x)


class BiasBeforeNorm(nn.Module):
    """Healthy: a conv bias right before BatchNorm (its gradient is ~0, but it exists)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(channels, channels, 3, padding=1, bias=True), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.conv(x))


class DeadAtOneSize(nn.Module):
    """Healthy: a spatial branch skipped on 1×1 maps only (dead there, alive everywhere else)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.point = nn.Conv2d(channels, channels, 1)
        self.spatial = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.point(x)
        return x if x.shape[-1] == 1 else x + self.spatial(x)


PLANTED = [HardCodedHW, HardCodedH, SquareOnly, WindowMultiple, MinSize, HeadsDivide, GroupsDivide, IgnoresInput,
           BatchMixEval, WritesInput, DeadParam, NaNAtSize, BNTrainBatch1, ZeroInitGate, BiasBeforeNorm, DeadAtOneSize]
