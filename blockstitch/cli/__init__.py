"""The `blockstitch` command: one module per subcommand (its arguments, its run, its rendering), the parser built
from the table below. Spec mistakes exit 2 with one located message, no traceback.

Start-up matters here: a command imports what it needs inside its own ``run``, after the arguments parsed, so
``--help``, ``--version``, a usage error, ``schema`` and ``zoo`` (from their generated files, see
:mod:`blockstitch.generated`) never import torch, and ``blocks`` lists from the block index.

Adding a subcommand touches one file: write ``blockstitch/cli/<name>.py`` with ``NAME``, ``HELP``,
``arguments(parser)`` and ``run(args) -> int``, and name its module in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import BlockstitchError, SpecError
from . import common

__all__ = ["main", "parser", "COMMANDS"]

COMMANDS: tuple[str, ...] = ("check", "profile", "check_module", "bench", "sweep", "ablate", "blocks", "schema",
                             "zoo", "graph", "export", "stitch")
"""The subcommands' modules, in the order ``--help`` lists them."""


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = argparse.ArgumentParser(prog="blockstitch", description="Compose PyTorch networks from blocks.")
    p.add_argument("--version", action="version", version=f"blockstitch {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file of your own blocks (registered with @register_block); repeatable")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        command = _command(name)
        command.arguments(sub.add_parser(command.NAME, help=command.HELP))
        sub.choices[command.NAME].set_defaults(func=command.run)
    return p


def _named(args: argparse.Namespace) -> str:
    """The file or name a command was given, to name it in a message."""
    for key in ("spec", "target", "file"):
        value = getattr(args, key, None)
        if isinstance(value, str):
            return value
    return str(getattr(args, "command", "blockstitch"))


def _load_entry_points() -> None:
    """Import installed ``blockstitch.blocks`` plugins (the registry, and so torch, only when there are some)."""
    from importlib.metadata import entry_points

    if entry_points(group="blockstitch.blocks"):
        from ..registry import load_entry_points

        common.set_plugged()
        load_entry_points()


def _load_plugins(files: Sequence[str]) -> None:
    for plugin in files:
        from ..registry import load_plugin_file

        common.set_plugged()
        try:
            load_plugin_file(plugin)
        except BlockstitchError:
            raise
        except Exception as e:  # the user's own code failed: say which file
            raise SpecError(f"--plugin {plugin}: importing it failed: {type(e).__name__}: {e}") from e


def _plugins_first(argv: list[str]) -> list[str]:
    """``--plugin FILE`` (or ``--plugin=FILE``) is accepted anywhere on the line: moved before the command.

    >>> _plugins_first(["check", "net.yaml", "--plugin", "mine.py"])
    ['--plugin', 'mine.py', 'check', 'net.yaml']
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            rest += argv[i:]
            break
        if argv[i] == "--plugin" and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 2
            continue
        (front if argv[i].startswith("--plugin=") else rest).append(argv[i])
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `blockstitch` console script; returns the exit code.

    Every failure is one message and exit 2 (1 for a check that ran and failed); no traceback reaches the
    user unless ``--debug`` is given (anywhere on the command line).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = parser().parse_args(_plugins_first([a for a in argv if a != "--debug"]))
    common.reset()
    if isinstance(getattr(args, "target", None), str):  # typed by the user: the only text that may name code
        from ..sources import CommandLine

        args.target = CommandLine(args.target)
    try:
        _load_entry_points()
        _load_plugins(args.plugin)
        return int(args.func(args))
    except BrokenPipeError:  # `blockstitch schema | head`
        return 0
    except KeyboardInterrupt:
        common.stderr().print("interrupted", highlight=False)
        return 130
    except BlockstitchError as e:
        return _fail(str(e), debug)
    except (RecursionError, MemoryError) as e:
        return _fail(f"{_named(args)}: too large to handle ({type(e).__name__})", debug)
    except Exception as e:  # noqa: BLE001 — a bug of ours still ends in one message, not a traceback
        first = (str(e).splitlines() or [""])[0][:300]
        message = (f"{_named(args)}: internal error ({type(e).__name__}: {first}); please report it — "
                   "`--debug` shows the traceback")
        _log_internal(message)
        return _fail(message, debug)


def _log_internal(message: str) -> None:
    """Append an internal error to the file ``$BLOCKSTITCH_INTERNAL_ERROR_LOG`` names, if set (the test suite sets
    it and fails any test during which one reached a user; a support log for anyone else)."""
    import os

    path = os.environ.get("BLOCKSTITCH_INTERNAL_ERROR_LOG")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as log:
                log.write(message.replace("\n", " ") + "\n")
        except OSError:
            pass  # a log that cannot be written must not hide the error itself


def _fail(message: str, debug: bool) -> int:
    """Print one error message (the traceback too with ``--debug``); exit code 2."""
    from rich.markup import escape

    if debug:
        import traceback

        traceback.print_exc()
    common.stderr().print(f"[bold red]error:[/bold red] {escape(message)}", markup=True, highlight=False,
                          soft_wrap=True)
    return 2
