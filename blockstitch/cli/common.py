"""What every subcommand shares: the two consoles (made once, after the arguments parsed, so ``--help`` never
imports rich) and the argument types.

>>> stdout().print("hello")
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ..progress import RichProgress, Silent

__all__ = ["stdout", "stderr", "progress", "progress_console", "shape_arg", "positive", "plugged", "set_plugged",
           "refuse_input"]

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


def progress_console() -> Console | None:
    """The console a progress display may draw on: standard error, when standard output and standard error are
    both terminals; else None (piped, redirected or captured: nothing is drawn)."""
    return stderr() if stdout().is_terminal and stderr().is_terminal else None


def progress(machine: bool = False) -> RichProgress | Silent:
    """The progress display of a long command, to use as a context manager and hand to the library: a bar on
    standard error (see :func:`progress_console`), silent with ``machine`` output (``--json``, ``--csv``,
    ``--markdown``). Standard output is the same either way.

    >>> with progress(args.json) as shown:                                   # doctest: +SKIP
    ...     blocks = bench_blocks(args.target, progress=shown)
    """
    from ..progress import RichProgress, Silent

    console = None if machine else progress_console()
    return Silent() if console is None else RichProgress(console)


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


def refuse_input(source: Any, shape: tuple[int, ...] | None, accept: Collection[str]) -> Any:
    """For an edit spec given ``--input``: a located error (exit 2) when its stitched network does not run at that
    input — the rule it breaks, the module that causes it, the nearest sizes that pass — before anything runs
    (only meta tensors do). Returns what the tool should be handed: the edit's resolved Subject (so it is not
    stitched a second time), otherwise ``source`` unchanged.

    >>> refuse_input("specs/swin_edit.yaml", (3, 416, 416), {"edit"})   # SpecError: --input: input 3×416×416 …
    """
    from ..sources import is_code_ref

    if shape is None or (isinstance(source, str) and is_code_ref(source)):
        return source
    from ..subject import subject

    found = subject(source, accept=accept)
    if found.what != "edit":
        return source
    if found.report is not None:
        found.report.refuse(shape)
    return found
