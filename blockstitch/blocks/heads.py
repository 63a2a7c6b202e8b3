"""Heads: a classifier (pool → dropout → linear) and a segmentation head (1×1 conv, optional upsampling)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..errors import ShapeError
from ..registry import register_block
from .ops import conv_macs, linear_macs

__all__ = ["ClassifierSpec", "Classifier", "SegHeadSpec"]

Readout = Literal["avg", "max", "token", "mean", "none"]


class Classifier(nn.Module):
    """Reads out one vector per sample (`readout`), then `drop` and the linear layer `fc`."""

    def __init__(self, readout: str, channels: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.readout = readout
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.readout == "avg":  # b c h w -> b c
            x = x.mean(dim=(2, 3))
        elif self.readout == "max":
            x = x.amax(dim=(2, 3))
        elif self.readout == "token":  # b n c -> b c: the class token
            x = x[:, 0]
        elif self.readout == "mean":  # b n c -> b c: mean over tokens
            x = x.mean(dim=1)
        return self.fc(self.drop(x))


@register_block
class ClassifierSpec(BlockSpec):
    """Classification head: global avg/max pool (`b c h w`), class token or token mean (`b n c`), → logits."""

    kind: Literal["classifier"] = "classifier"
    card = BlockCard("head", aliases=("Classify", "ClassifierHead"), insert_where="last")
    num_classes: PositiveInt
    """Number of classes (not scaled by the width multiplier)."""
    pool: Readout = "avg"
    """avg / max over h, w; token (the class token) / mean over tokens; none for `b c` input."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout before the linear layer."""

    in_layouts = ("b c h w", "b n c", "b c")
    _RANK: ClassVar[dict[str, int]] = {"avg": 4, "max": 4, "token": 3, "mean": 3, "none": 2}

    def out_layout(self, in_layout: str) -> str:
        return "b c"

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        x = in_shapes[0]
        want = self._RANK[self.pool]
        if len(x) != want:
            layout = {4: "b c h w", 3: "b n c", 2: "b c"}[want]
            fits = [k for k, r in self._RANK.items() if r == len(x)]
            raise ShapeError(f"classifier pool '{self.pool}' needs a {layout} input", in_shapes=in_shapes,
                             expected=layout, found=f"{len(x)}-d", hint=f"for this input use pool: {' or '.join(fits)}")
        return (x[0], self.num_classes)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        x = in_shapes[0]
        return linear_macs((x[0], x[1] if len(x) != 3 else x[2]), self.num_classes)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        x = in_shapes[0]
        return Classifier(self.pool, x[2] if len(x) == 3 else x[1], self.num_classes, self.dropout)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"num_classes": 5, "dropout": 0.1}, [[(2, 8, 3, 3)], [(1, 8, 5, 4)]]


@register_block
class SegHeadSpec(BlockSpec):
    """Segmentation head: a 1×1 conv to class logits per pixel, optionally upsampled by `scale`."""

    kind: Literal["seg_head"] = "seg_head"
    card = BlockCard("head", aliases=("SegHead",), insert_where="last")
    num_classes: PositiveInt
    """Number of classes."""
    scale: PositiveInt = 1
    """Bilinear upsampling factor after the conv (1 = none)."""

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        b, _, h, w = in_shapes[0]
        return (b, self.num_classes, h * self.scale, w * self.scale)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        b, c, h, w = in_shapes[0]
        return conv_macs((b, self.num_classes, h, w), c, (1, 1))

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        conv = nn.Conv2d(in_shapes[0][1], self.num_classes, 1)
        if self.scale == 1:
            return conv
        return nn.Sequential(conv, nn.Upsample(scale_factor=self.scale, mode="bilinear", align_corners=False))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"num_classes": 3, "scale": 2}, [[(2, 8, 5, 5)], [(1, 8, 4, 7)]]
