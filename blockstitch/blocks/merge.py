"""Merges of several inputs: concatenate along an axis, or add. Mismatched spatial sizes follow a policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape, axis_index
from ..errors import ShapeError, fmt_shape
from ..registry import register_block

__all__ = ["ConcatSpec", "AddSpec", "Policy", "fit_spatial", "aligned_size"]

Policy = Literal["error", "pad", "crop"]


def aligned_size(kind: str, shapes: Sequence[Shape], policy: str) -> tuple[int, int] | None:
    """The common (h, w) of 4-d inputs under `policy`, or None when they already agree."""
    sizes = {tuple(s[-2:]) for s in shapes}
    if len(sizes) == 1:
        return None
    if policy == "error":
        raise ShapeError(
            f"'{kind}' inputs differ in spatial size", in_shapes=shapes,
            expected="equal h, w", found=", ".join(fmt_shape(s) for s in shapes),
            hint="set policy: pad (pad the later inputs to the first's size, as U-Net implementations do) "
                 "or policy: crop (centre-crop to the smallest, as the U-Net paper does)")
    if policy == "pad":
        return tuple(shapes[0][-2:])  # type: ignore[return-value]
    return min(s[-2] for s in shapes), min(s[-1] for s in shapes)


def fit_spatial(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Centre-pad (with zeros) or centre-crop ``x`` to ``h × w``; F.pad crops where the amounts are negative."""
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


class Merge(nn.Module):
    """Concatenate (``dim`` set) or add its inputs, after fitting them to one spatial size when asked."""

    def __init__(self, dim: int | None, policy: str) -> None:
        super().__init__()
        self.dim, self.policy = dim, policy

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.policy != "error" and xs[0].dim() == 4:
            h = xs[0].shape[-2] if self.policy == "pad" else min(x.shape[-2] for x in xs)
            w = xs[0].shape[-1] if self.policy == "pad" else min(x.shape[-1] for x in xs)
            xs = tuple(fit_spatial(x, h, w) for x in xs)
        if self.dim is not None:
            return torch.cat(xs, dim=self.dim)
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _MergeSpec(BlockSpec):
    policy: Policy = "error"
    """When spatial sizes differ: error, pad (to the first input's size) or crop (to the smallest)."""

    in_layouts = None
    arity = None

    def _aligned(self, in_shapes: Sequence[Shape]) -> list[Shape]:
        layouts = {len(s) for s in in_shapes}
        if len(layouts) != 1:
            raise ShapeError(f"'{self.kind}' inputs have different ranks", in_shapes=in_shapes,
                             found=", ".join(fmt_shape(s) for s in in_shapes))
        size = aligned_size(self.kind, in_shapes, self.policy) if len(in_shapes[0]) == 4 else None
        if size is None:
            return [tuple(s) for s in in_shapes]
        return [(*s[:-2], *size) for s in in_shapes]

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return 0


@register_block
class ConcatSpec(_MergeSpec):
    """Concatenate inputs along an axis of their layout (default the channels, `c`)."""

    kind: Literal["concat"] = "concat"
    card = BlockCard("fusion", aliases=("Concat",), insert_where="where two paths meet (necks, U-Nets)")
    axis: str = "c"
    """Axis name in the input layout (`c` for channels, `n` for tokens)."""

    def _dim(self, shape: Shape) -> int:
        return axis_index(self.layout_for(shape), self.axis)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        shapes = self._aligned(in_shapes)
        dim = self._dim(shapes[0])
        rest = {tuple(s[:dim]) + tuple(s[dim + 1:]) for s in shapes}
        if len(rest) != 1:
            raise ShapeError(f"concat along '{self.axis}' needs every other axis equal", in_shapes=in_shapes,
                             found=", ".join(fmt_shape(s) for s in in_shapes),
                             hint="bring the inputs to one size first (a pool, a conv or policy: pad/crop)")
        out = list(shapes[0])
        out[dim] = sum(s[dim] for s in shapes)
        return tuple(out)

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return Merge(self._dim(in_shapes[0]), self.policy)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"policy": "pad"}, [[(2, 4, 8, 8), (2, 6, 8, 8)], [(1, 4, 6, 6), (1, 2, 5, 5)]]


@register_block
class AddSpec(_MergeSpec):
    """Element-wise sum of inputs of one shape (a residual join)."""

    kind: Literal["add"] = "add"
    card = BlockCard("fusion", aliases=("Add", "Sum"), insert_where="where two paths meet (residuals, FPN)")

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        shapes = self._aligned(in_shapes)
        if len(set(shapes)) != 1:
            raise ShapeError("'add' needs inputs of one shape", in_shapes=in_shapes,
                             expected=fmt_shape(shapes[0]), found=", ".join(fmt_shape(s) for s in in_shapes),
                             hint="match the channels with a 1×1 conv node before adding")
        return shapes[0]

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return Merge(None, self.policy)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 8, 8)], [(1, 5, 16), (1, 5, 16)]]


