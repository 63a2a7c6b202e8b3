"""Factories for norms and activations that accept a name, a class or a partial, as timm's do.

Names are what spec files use (``norm: batchnorm``, ``act: silu``); Python users may pass a class or a
``functools.partial`` instead. Unknown names raise :class:`SpecError` with the nearest valid name, where
timm would raise a bare ``KeyError``/``assert``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import nn

from ..errors import SpecError, did_you_mean

__all__ = ["NormName", "ActName", "get_norm", "get_act", "NORM_LAYOUTS"]

NormName = Literal["batchnorm", "groupnorm", "layernorm", "instancenorm", "none"]
ActName = Literal[
    "relu", "relu6", "leaky_relu", "gelu", "gelu_tanh", "silu", "swish", "mish", "sigmoid", "hard_sigmoid",
    "hardswish", "tanh", "elu", "prelu", "none",
]

NORM_LAYOUTS: dict[str, tuple[str, ...]] = {
    "batchnorm": ("b c h w", "b c", "b c l"),
    "groupnorm": ("b c h w", "b c", "b c l"),
    "instancenorm": ("b c h w",),
    "layernorm": ("b n c", "b h w c", "b c", "b c h w"),
    "none": ("b c h w", "b h w c", "b n c", "b c", "b c l"),
}
"""Layouts each norm can work in (layernorm on ``b c h w`` normalizes over channels, as ConvNeXt does)."""

_ACT_ALIASES = {"swish": "silu", "hard_sigmoid": "hard_sigmoid", "none": None}

_ACTS: dict[str, type[nn.Module]] = {
    "relu6": nn.ReLU6, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU, "mish": nn.Mish,
    "sigmoid": nn.Sigmoid, "hard_sigmoid": nn.Hardsigmoid, "hardswish": nn.Hardswish, "tanh": nn.Tanh,
    "elu": nn.ELU, "prelu": nn.PReLU,
}
"""Activation classes by name: torch's own (what timm's ``get_act_layer`` resolves to, or the same function),
so a spec that only names activations never imports timm."""


def get_norm(
    norm: str | type[nn.Module] | Callable[..., nn.Module] | None,
    channels: int,
    layout: str = "b c h w",
    eps: float = 1e-5,
    groups: int = 32,
) -> nn.Module:
    """A norm layer over ``channels`` for a tensor in ``layout``.

    >>> get_norm("batchnorm", 64)
    BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    """
    if norm is None or norm == "none":
        return nn.Identity()
    if not isinstance(norm, str):
        return norm(channels)  # a class or a partial: the caller knows what it wants
    if norm not in NORM_LAYOUTS:
        raise SpecError(f"unknown norm '{norm}'{did_you_mean(norm, NORM_LAYOUTS)}", expected=", ".join(NORM_LAYOUTS))
    if layout not in NORM_LAYOUTS[norm]:
        raise SpecError(
            f"norm '{norm}' does not apply to layout '{layout}'",
            expected=f"one of {', '.join(NORM_LAYOUTS[norm])}",
            found=layout,
            hint="layernorm suits token layouts (b n c); batchnorm suits b c h w",
        )
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels, eps=eps) if layout == "b c h w" else nn.BatchNorm1d(channels, eps=eps)
    if norm == "groupnorm":
        g = groups if channels % groups == 0 else _largest_divisor(channels, groups)
        return nn.GroupNorm(g, channels, eps=eps)
    if norm == "instancenorm":
        return nn.InstanceNorm2d(channels, eps=eps, affine=True)
    if layout == "b c h w":
        from timm.layers import LayerNorm2d  # timm only for the specs that use it

        return LayerNorm2d(channels, eps=eps)
    return nn.LayerNorm(channels, eps=eps)


def _largest_divisor(channels: int, at_most: int) -> int:
    return max(d for d in range(1, at_most + 1) if channels % d == 0)


def get_act(act: str | type[nn.Module] | Callable[..., nn.Module] | None, inplace: bool = False) -> nn.Module:
    """An activation module by name (``relu``, ``gelu``, ``silu``…), class or partial; ``none`` → Identity.

    >>> get_act("relu", inplace=True)
    ReLU(inplace=True)
    """
    if act is None or act == "none":
        return nn.Identity()
    if not isinstance(act, str):
        return act()
    if act not in ActName.__args__:  # type: ignore[attr-defined]
        raise SpecError(f"unknown activation '{act}'{did_you_mean(act, ActName.__args__)}")  # type: ignore[attr-defined]
    name = _ACT_ALIASES.get(act, act)
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    layer = _ACTS[name]
    try:
        return layer(inplace=inplace) if inplace else layer()
    except TypeError:  # not every activation takes inplace
        return layer()
