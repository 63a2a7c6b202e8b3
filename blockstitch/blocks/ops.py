"""Shape and MAC arithmetic shared by blocks (the analytic side that meta tensors cross-check).

MACs are counted the way ``torch.utils.flop_counter`` counts FLOPs, halved: convolutions, linear layers and
matmuls; norms, activations, pooling and elementwise ops count zero here (the profiler lists them apart).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..blockspec import Shape
from ..errors import ShapeError, fmt_shape

__all__ = ["conv_out", "conv_macs", "conv_t_macs", "linear_macs", "attention_macs", "pair", "spatial", "make_divisible"]


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; ``[3, 5]`` → ``(3, 5)``."""
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, ceil: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula).

    >>> conv_out(224, 7, 2, 3)
    112
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window must start inside the input (PyTorch's rule)
            out -= 1
        return out
    return span // stride + 1


def spatial(kind: str, in_shape: Shape, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
            dilation: tuple[int, int] = (1, 1), ceil: bool = False) -> tuple[int, int]:
    """Output (h, w) of a 2-d window op; a :class:`ShapeError` explains an input that is too small."""
    h, w = in_shape[-2], in_shape[-1]
    oh = conv_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil)
    ow = conv_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil)
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"input too small for '{kind}': a {kernel[0]}×{kernel[1]} window (stride {stride[0]}, "
            f"padding {padding[0]}) over {h}×{w} leaves nothing",
            expected=f"spatial size ≥ {max(kernel[0] - 2 * padding[0], 1)}×{max(kernel[1] - 2 * padding[1], 1)}",
            found=fmt_shape(in_shape),
            hint="use a larger --input, or fewer/smaller strides before this node",
            in_shapes=[in_shape],
        )
    return oh, ow


def conv_macs(out_shape: Shape, in_channels: int, kernel: tuple[int, int], groups: int = 1) -> int:
    """MACs of a 2-d (or 1-d, with kernel ``(k, 1)``) convolution producing ``out_shape``."""
    return math.prod(out_shape) * (in_channels // groups) * kernel[0] * kernel[1]


def conv_t_macs(in_shape: Shape, out_channels: int, kernel: tuple[int, int], groups: int = 1) -> int:
    """MACs of a transposed convolution reading ``in_shape`` (every input pixel scatters a kernel)."""
    return math.prod(in_shape) * (out_channels // groups) * kernel[0] * kernel[1]


def linear_macs(in_shape: Shape, out_features: int) -> int:
    """MACs of a linear layer over the last axis, for every leading position (tokens included)."""
    return math.prod(in_shape) * out_features


def attention_macs(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int, v_dim: int | None = None) -> int:
    """MACs of ``softmax(q kᵀ) v``: ``q kᵀ`` plus ``attn v`` (what SDPA computes)."""
    v_dim = head_dim if v_dim is None else v_dim
    return batch * heads * q_len * kv_len * (head_dim + v_dim)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``, default ``divisor``),
    one step up when rounding would lose more than ``1 - round_limit`` of it: timm's channel rule, here so that
    planning a spec does not import timm (a test pins equality with ``timm.layers.make_divisible``).

    >>> make_divisible(64 / 16, 8, round_limit=0.0)
    8
    >>> make_divisible(0.75 * 100)
    72
    """
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded
