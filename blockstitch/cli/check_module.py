"""`blockstitch check-module TARGET`: is this module plug-and-play? Exit 0 if every required check holds."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from typing import Any

from ..errors import SpecError
from .common import positive, progress, shape_arg, stdout

NAME = "check-module"
HELP = "is a module plug-and-play? sizes, layouts, modes, dtypes, grads"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("target", help="a block kind, path/to/file.py:Name or package.module:Name")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a field or constructor argument (a literal, never evaluated); repeatable")
    p.add_argument("--in", dest="input", default=None, metavar="PATTERN",
                   help="input contract, e.g. 'b c h w' (default: try b c h w, b n c, b h w c)")
    p.add_argument("--out", dest="output", default=None, metavar="PATTERN", help="output contract, e.g. 'b (c*2) h w'")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=N", help="bind an axis size, e.g. c=64")
    p.add_argument("--compile", action="store_true", help="also try torch.compile(fullgraph=True) (slow)")
    p.add_argument("--export", action="store_true", help="also try torch.export (slow)")
    p.add_argument("--no-compile", action="store_true", help=argparse.SUPPRESS)  # the default since 0.2
    p.add_argument("--no-export", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--compile-backend", default="aot_eager", help="torch.compile backend (default aot_eager)")
    p.add_argument("--time-budget", type=_seconds, default=None, metavar="SECONDS",
                   help="the whole check's time limit (default 60, +120 each for --compile and --export); a "
                        "forward too slow for it stops the check: 'too slow: N s per forward at size S'")
    p.add_argument("--into", metavar="NETWORK", help="stitch report: insert into this zoo network or spec")
    p.add_argument("--at", default="layer1,layer2,layer3,layer4", help="comma-separated node names (with --into)")
    p.add_argument("--stitch-input", type=shape_arg, default=None, metavar="C,H,W", help="network input for --into")
    p.add_argument("--rounds", "--reps", dest="rounds", type=positive, default=30,
                   help="paired timing rounds, baseline and every stitched network once each (with --into; "
                        "default 30)")
    p.add_argument("--no-latency", action="store_true",
                   help="with --into: Δparams and ΔMACs only, on meta tensors; nothing is timed")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Run the checks (and the stitch report with ``--into``); 0 when every required check holds, else 1."""
    from ..check import check_module, parse_args
    from ..check.stitch_report import stitch_report
    from ..render import render_check, render_stitch_rows
    from ..subject import subject

    axes = parse_args(args.axis)
    if any(not isinstance(v, int) for v in axes.values()):
        raise SpecError("--axis expects name=integer, e.g. --axis c=64")
    ctor = _classes(parse_args(args.arg), str(args.target))
    target = subject(args.target, accept={"block", "code"})  # resolved once, handed on
    into = None
    if args.into:  # a bad network file fails now, not after the checks
        into = subject(args.into, accept={"spec", "edit"})
        into.plan(args.stitch_input)
    with progress(args.json) as shown:  # one step per layout, size, channel count and check; stderr, terminals only
        report = check_module(target, input=args.input, output=args.output, axes=axes, args=ctor,
                              compile=args.compile and not args.no_compile,
                              export=args.export and not args.no_export, compile_backend=args.compile_backend,
                              budget=args.time_budget, progress=shown)
    stitched = None
    if into is not None:
        factory, _ = target.factory(ctor)
        with progress(args.json) as shown:  # one step per insertion point; stderr, terminals only
            stitched = stitch_report(factory, into, [a for a in args.at.split(",") if a], args.stitch_input,
                                     rounds=args.rounds, timer=None if args.no_latency else _cpu_timer,
                                     progress=shown)
    if args.json:
        data = report.to_dict()
        if stitched is not None:
            data["stitch"] = stitched.to_dict() | {"into": args.into}
        print(json.dumps(data, indent=2, default=list))
    else:
        out = stdout()
        for note in _bound_notes(str(args.target), ctor):
            out.print(f"bound: {note}", highlight=False)
        render_check(report, out)
        if stitched is not None:
            render_stitch_rows(stitched, console=out)
    return 0 if report.ok else 1


def _cpu_timer(fns: list[Callable[[], object]], rounds: int) -> list[list[float]]:
    """The bench harness's paired timer on the CPU (interleaved rounds, ABBA order)."""
    import torch

    from ..bench.timing import interleaved

    return interleaved(fns, torch.device("cpu"), rounds)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds: ``--time-budget 30``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 60, got '{text}'") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got '{text}'")
    return value


_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _classes(ctor: dict[str, Any], target: str) -> dict[str, Any]:
    """``--arg norm=torch.nn:BatchNorm2d`` passes the class itself to a class target's constructor (text typed
    on the command line is the only text that may name code)."""
    if ":" not in target:
        return ctor
    from ..sources import CommandLine
    from ..subject import subject

    return {k: subject(CommandLine(v), accept={"code"}).obj if isinstance(v, str) and _CLASS.match(v) else v
            for k, v in ctor.items()}


def _bound_notes(target: str, ctor: dict[str, Any]) -> list[str]:
    """What check-module bound for a kind's required fields (at a 64-wide input, as the checks start)."""
    if ":" in target:
        return []
    from ..registry import get_block
    from ..required import fill_required

    try:
        return fill_required(get_block(target), ctor, 64)[1]
    except Exception:  # noqa: BLE001 — an unknown kind was already reported by the checks
        return []
