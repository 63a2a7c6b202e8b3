"""What every subcommand shares: the two consoles (made once, after the arguments parsed, so ``--help`` never
imports rich) and the argument types.

>>> stdout().print("hello")
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["stdout", "stderr", "shape_arg", "positive", "plugged", "set_plugged"]

_consoles: list[Console] = []
_plugged: list[bool] = [False]


def _make() -> list[Console]:
    if not _consoles:
        from rich.console import Console

        out = Console(highlight=False)
        if not out.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
            out = Console(highlight=False, width=200)
        err = Console(stderr=True, highlight=False, width=None if Console(stderr=True).is_terminal else 200)
        _consoles.extend([out, err])
    return _consoles


def reset() -> None:
    """Make the consoles anew on next use (each :func:`blockstitch.cli.main` call: stdout may have been swapped)."""
    _consoles.clear()


def stdout() -> Console:
    """The console for results (standard output)."""
    return _make()[0]


def stderr() -> Console:
    """The console for messages, warnings and progress (standard error)."""
    return _make()[1]


def plugged() -> bool:
    """Whether ``--plugin`` files or entry points may have registered blocks (then no generated file is trusted)."""
    return _plugged[0]


def set_plugged() -> None:
    """Record that plugins may have registered blocks."""
    _plugged[0] = True


def shape_arg(text: str) -> tuple[int, ...]:
    """``3,224,224`` (or ``3x224x224``) → ``(3, 224, 224)``; positive integers only.

    >>> shape_arg("3x64x64")
    (3, 64, 64)
    """
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 3,224,224, got '{text}'") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got '{text}'")
    return values


def positive(text: str) -> int:
    """An integer ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value
