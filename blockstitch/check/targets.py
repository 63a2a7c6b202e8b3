"""What `check-module` checks: a registered block kind, or a class the user names explicitly
(`path/to/file.py:Name`, `package.module:Name`), with constructor arguments parsed as literals."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..blockspec import Shape
from ..errors import RegistryError, SpecError
from ..registry import get_block, import_file

__all__ = ["Factory", "parse_args", "resolve_target", "CHANNEL_ARGS"]

Factory = Callable[[Shape, str, int], nn.Module]
"""Builds the module for (input shape, its layout, its channel count), so channels can follow the input."""

CHANNEL_ARGS = ("channels", "in_channels", "in_chs", "dim", "num_channels", "in_planes", "inplanes", "c", "chs")
"""Constructor parameters taken to be the input channel count (bound when stitching at other widths)."""


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``["channels=64", "act='relu'"]`` → ``{"channels": 64, "act": "relu"}``: literals only, never evaluated."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip().isidentifier():
            raise SpecError(f"--arg expects name=value, got '{pair}'")
        try:
            out[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[name.strip()] = value.strip()  # a bare word is a string
    return out


def _load_class(target: str) -> type:
    where, _, name = target.rpartition(":")
    if where.endswith(".py") or "/" in where:
        try:
            module = import_file(where)
        except RegistryError as err:
            raise SpecError(str(err)) from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise SpecError(f"cannot import module '{where}': {err}") from None
    if not hasattr(module, name):
        names = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)]
        raise SpecError(f"'{where}' has no '{name}'", expected="one of: " + ", ".join(names[:10]))
    cls = getattr(module, name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) and not callable(cls):
        raise SpecError(f"'{target}' is not an nn.Module class or factory")
    return cls


def channel_param(cls: Callable[..., Any]) -> str | None:
    """The constructor parameter that takes the input channels, if one is named like it."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    return next((p for p in CHANNEL_ARGS if p in params), None)


def resolve_target(target: str, args: dict[str, Any]) -> tuple[str, Factory, bool]:
    """(label, factory, follows_channels): a registered kind builds for the input shape; a class is called
    with ``args`` (its channel parameter, if any, set from the input when not given)."""
    if ":" not in target:
        try:
            cls = get_block(target)
        except RegistryError as err:
            raise SpecError(str(err), hint="or name a class: path/to/file.py:Name or package.module:Name") from None
        spec = cls.model_validate({"kind": target, **args})
        return target, lambda shape, layout, channels: spec.with_layout(layout).build([shape]), True
    cls = _load_class(target)
    param = channel_param(cls)

    def factory(shape: Shape, layout: str, channels: int) -> nn.Module:
        kwargs = dict(args)
        if param is not None and param not in kwargs:
            kwargs[param] = channels
        return cls(**kwargs)

    return target.rpartition(":")[2], factory, param is not None and param not in args
