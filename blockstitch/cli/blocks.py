"""`blockstitch blocks [KIND]`: the registered kinds (filtered by --category / --search), one card, the catalogue
page (--markdown) or JSON."""

from __future__ import annotations

import argparse
import json

from .common import stderr, stdout

NAME = "blocks"
HELP = "list the registered blocks, or show one block's card"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("kind", nargs="?", default=None, help="show this block's card (a kind or an alias, e.g. CoordAtt)")
    p.add_argument("--category", default=None, help="only this category (attention, conv, down, up, fusion, …)")
    p.add_argument("--search", default=None, metavar="WORD",
                   help="kinds, aliases and paper titles containing WORD (case, '-', '_' and spaces ignored)")
    p.add_argument("--json", action="store_true", help="print JSON (kind, category, paper, aliases, inputs, rules…)")
    p.add_argument("--markdown", action="store_true", help="print the catalogue page (docs/library.md)")
    p.add_argument("--lang", default="en", choices=["en", "zh-CN"], help="language of --markdown")


def run(args: argparse.Namespace) -> int:
    """Print the list, a card, the catalogue page or JSON."""
    from rich.table import Table

    from .. import catalogue

    if args.markdown:
        from ..catalogue_docs import library_markdown

        print(library_markdown(args.lang), end="")
        return 0
    out = stdout()
    if args.kind:
        if args.json:
            print(json.dumps(catalogue.entry(args.kind).to_dict(), indent=2))
        else:
            out.print(catalogue.card_text(args.kind), markup=False, highlight=False)
        return 0
    found = catalogue.entries()
    if args.category:
        found = catalogue.by_category(args.category, found)
    if args.search:
        found = catalogue.search(args.search, found)
    if args.json:
        print(json.dumps([e.to_dict() for e in found], indent=2))
        return 0
    table = Table(header_style="bold")
    for col in ("kind", "category", "paper", "aliases", "layout in", "what it is"):
        table.add_column(col)
    for e in found:
        layouts = "any" if e.layouts_in is None else " | ".join(e.layouts_in)
        paper = f"{e.paper.venue} {e.paper.year}" if e.paper else ""
        table.add_row(e.kind, e.category, paper, ", ".join(e.aliases[:3]), layouts, e.doc)
    out.print(table)
    if not found:
        stderr().print("no block matches; try `blockstitch blocks --search WORD` with part of a name")
    return 0
