"""What `check-module` checks: a registered block kind, or a class the user names explicitly
(`path/to/file.py:Name`, `package.module:Name`), with constructor arguments parsed as literals."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from torch import nn

from ..blockspec import Shape
from ..errors import RegistryError, SpecError, pydantic_error
from ..foreign import IN_CHANNEL_ARGS, OUT_CHANNEL_ARGS
from ..registry import get_block

__all__ = ["Factory", "parse_args", "resolve_target", "channel_params", "fixed_channels", "class_factory", "CHANNEL_ARGS",
           "OUT_CHANNEL_ARGS"]

Factory = Callable[[Shape, str, int], nn.Module]
"""Builds the module for (input shape, its layout, its channel count), so channels can follow the input."""

CHANNEL_ARGS = (*IN_CHANNEL_ARGS, "d_model", "embed_dim", "dim_in", "in_ch", "inp_dim", "in_features", "num_features")
"""Constructor parameters taken to be the input channel count (the stitcher's names, plus token widths)."""
OUT_ARGS = (*OUT_CHANNEL_ARGS, "out_ch", "dim_out", "out_features")
"""Constructor parameters taken to be the output channel count (bound to the input's for a shape-keeping check
when the constructor requires them)."""


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
    """The class ``target`` names: only command-line text may name code (see :mod:`blockstitch.sources`)."""
    from ..sources import user_class

    return user_class(target)  # type: ignore[return-value]


def channel_params(cls: Callable[..., Any]) -> tuple[str | None, str | None]:
    """(input, output) channel parameters of a constructor, if named like them: ``C2f`` → ``("c1", "c2")``.

    >>> channel_params(torch.nn.Conv2d)
    ('in_channels', 'out_channels')
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None, None
    return (next((p for p in CHANNEL_ARGS if p in params), None),
            next((p for p in OUT_ARGS if p in params and params[p].default is inspect.Parameter.empty), None))


def fixed_channels(target: str | type, args: dict[str, Any]) -> int | None:
    """The input channels the user's ``args`` fix for a class target (``c1=64`` → 64), else None."""
    if isinstance(target, str) and ":" not in target:
        return None
    param = channel_params(target if isinstance(target, type) else _load_class(target))[0]
    value = args.get(param) if param else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def class_factory(cls: Callable[..., Any], args: dict[str, Any]) -> tuple[Factory, bool]:
    """(factory, follows_channels) for a module class: called with ``args``, its input channel parameter (if
    any) set from the input when not given, and its output channel parameter set to the same when not given
    either (a shape-keeping check).

    >>> factory, follows = class_factory(torch.nn.Conv2d, {"kernel_size": 3, "padding": 1})
    >>> factory((1, 8, 5, 5), "b c h w", 8).out_channels, follows
    (8, True)
    """
    c_in, c_out = channel_params(cls)
    follows = c_in is not None and c_in not in args

    def factory(shape: Shape, layout: str, channels: int) -> nn.Module:
        kwargs = dict(args)
        if follows:
            kwargs[c_in] = channels  # type: ignore[index]
        if c_out is not None and c_out not in kwargs and c_in is not None:
            kwargs[c_out] = kwargs[c_in]  # required and not given: keep the width
        return cls(**kwargs)

    return factory, follows


def resolve_target(target: str, args: dict[str, Any]) -> tuple[str, Factory, bool]:
    """(label, factory, follows_channels) for a registered kind (built for the input shape) or a command-line
    ``file.py:Name`` / ``package.module:Name`` (see :func:`class_factory`)."""
    if ":" not in target:
        try:
            cls = get_block(target)
        except RegistryError as err:
            raise SpecError(str(err), hint="or name a class: path/to/file.py:Name or package.module:Name") from None
        try:
            spec = cls.model_validate({"kind": target, **args})
        except ValidationError as err:  # a field given with --arg is wrong
            problem = pydantic_error(err, model=cls)
            problem.message, problem.path = f"'{target}': {problem.message}", f"--arg {problem.path or target}"
            problem.hint = (problem.hint + "; " if problem.hint else "") + \
                "`blockstitch schema` lists every field of every kind"
            raise problem.located() from None
        return target, lambda shape, layout, channels: spec.with_layout(layout).build([shape]), True
    factory, follows = class_factory(_load_class(target), args)
    return target.rpartition(":")[2], factory, follows
