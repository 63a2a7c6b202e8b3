"""`blockstitch graph TARGET`: a Mermaid, DOT or SVG diagram with node paths, kinds, shapes and edits."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive, progress, refuse_input, shape_arg, stderr, stdout

NAME = "graph"
HELP = "draw a network: Mermaid, DOT or SVG, with names, kinds, shapes and edits"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("target", help="a zoo name, a spec or edit spec file, timm:<model> or file.py:Name")
    p.add_argument("--format", default="mermaid", choices=["mermaid", "dot", "svg"], help="default mermaid")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write here (default: print)")
    p.add_argument("--depth", type=positive, default=None, metavar="N",
                   help="collapse modules deeper than N path parts (1: stages such as layer1)")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")


def run(args: argparse.Namespace) -> int:
    """Print the diagram, or write it to ``--output`` and say what was written."""
    from ..export import writable
    from ..graph import graph_record, render
    from ..graph.mermaid import github_limits
    from ..output import write_file
    from ..progress import Steps
    from ..subject import NETWORK_KINDS

    target = writable(Path(args.output)) if args.output else None
    source = refuse_input(args.target, args.input, NETWORK_KINDS | {"code"})  # before anything runs
    with progress() as shown, Steps(shown, 2) as steps:  # stderr, terminals only; stdout the same either way
        steps.next(f"tracing {args.target}")
        record = graph_record(source, args.input, args.depth)
        steps.next(f"rendering {args.format}")
        text = render(record, args.format)
    if args.format == "mermaid" and (over := github_limits(text)):
        stderr().print(f"note: {over}")
    if target is None:
        print(text, end="")
        return 0
    write_file(target, text)
    legend = "; ".join(f"{op}: {len(names)}" for op, names in record.legend.items())
    stdout().print(f"{target}: {args.format}, {len(record.nodes)} nodes, {len(record.edges)} edges"
                   + (f"; edits {legend}" if legend else ""))
    return 0
