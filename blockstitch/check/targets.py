"""What `check-module` checks: a registered block kind, a class the user names explicitly (`path/to/file.py:Name`,
`package.module:Name`) or gives, with constructor arguments parsed as literals. What a target is and how its
module is made is the Subject's (:meth:`blockstitch.subject.Subject.factory`); what its arguments fix is judged
here."""

from __future__ import annotations

import ast
from typing import Any

from ..errors import SpecError
from ..foreign import CHANNEL_ARGS, OUT_ARGS, OUT_CHANNEL_ARGS, Factory, channel_params, class_factory
from ..subject import Subject, subject

__all__ = ["Factory", "parse_args", "resolve_target", "channel_params", "fixed_channels", "class_factory",
           "CHANNEL_ARGS", "OUT_CHANNEL_ARGS", "OUT_ARGS", "TARGET_KINDS"]

TARGET_KINDS = frozenset({"module", "block", "code"})
"""What `check-module` takes: an ``nn.Module``, a block kind, a module class (or a factory given in Python)."""


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


def fixed_channels(target: Subject, args: dict[str, Any]) -> int | None:
    """The input channels the user's ``args`` fix for a class target (``c1=64`` → 64), else None."""
    if target.constructor is None:
        return None
    param = channel_params(target.constructor)[0]
    value = args.get(param) if param else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resolve_target(target: Subject | str, args: dict[str, Any]) -> tuple[str, Factory, bool]:
    """(label, factory, follows_channels) for a registered kind (built for the input shape) or a command-line
    ``file.py:Name`` / ``package.module:Name`` (see :meth:`blockstitch.subject.Subject.factory`)."""
    found = subject(target, accept={"block", "code"})
    factory, follows = found.factory(args)
    return found.label, factory, follows
