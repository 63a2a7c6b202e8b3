"""`blockstitch zoo`: the bundled specs with parameters and GMACs (read from the generated table when it was made
from these very sources and specs, else profiled now on meta tensors)."""

from __future__ import annotations

import argparse
import json

from .common import stdout

NAME = "zoo"
HELP = "list the bundled specs with their params and MACs"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Print the table (Markdown, JSON or a rich table)."""
    from ..assemble.zoo import gmacs_text, zoo_markdown
    from ..generated import ZOO_FILE, read
    from ..regenerate import live_zoo_rows, zoo_digest

    rows = read(ZOO_FILE, zoo_digest())
    if rows is None:
        rows = live_zoo_rows()
    if args.markdown:
        print(zoo_markdown(rows))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(header_style="bold", title="bundled specs (batch 1, each at its own input)", title_justify="left")
    for col, justify in (("spec", "left"), ("input", "left"), ("params", "right"), ("GMACs", "right"),
                         ("description", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["name"]), str(r["input"]), f"{r['params']:,}", gmacs_text(float(r["gmacs"])),
                      str(r["description"]))
    stdout().print(table)
    return 0
