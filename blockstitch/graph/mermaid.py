"""Mermaid flowcharts that GitHub renders as they are: quoted labels, entity-escaped text, styled classes."""

from __future__ import annotations

from .records import EDIT_STYLES, GraphRecord, legend_lines

__all__ = ["to_mermaid", "escape", "github_limits"]

GITHUB_MAX_EDGES, GITHUB_MAX_TEXT = 500, 50_000
"""What GitHub's Mermaid renders at most (its `maxEdges` and `maxTextSize`)."""

_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;", "|": "#124;"}


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label (``#`` first, so entities are not escaped twice).

    >>> escape('a "b" <c>#2')
    'a #quot;b#quot; #lt;c#gt;#35;2'
    """
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def to_mermaid(record: GraphRecord) -> str:
    """A ``flowchart TD`` with one quoted, two-line box per node; edit classes coloured and a legend subgraph.

    >>> print(to_mermaid(graph_record("lenet5", depth=1)).splitlines()[0])
    flowchart TD
    """
    ids = {n.name: f"n{i}" for i, n in enumerate(record.nodes)}
    lines = ["flowchart TD"]
    for n in record.nodes:
        title, detail = n.label
        shape = ('(["', '"])') if n.io else ('["', '"]')
        lines.append(f"  {ids[n.name]}{shape[0]}{escape(title)}<br/>{escape(detail)}{shape[1]}")
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in record.edges]
    for op, names in record.legend.items():
        fill, stroke = EDIT_STYLES[op]
        lines.append(f"  classDef {op} fill:{fill},stroke:{stroke},stroke-width:2px,color:#000")
        lines.append(f"  class {','.join(ids[n] for n in names)} {op}")
    if record.legend:
        lines.append("  subgraph legend [legend]")
        lines.append("    direction LR")
        for op, text in legend_lines(record):
            lines.append(f'    legend_{op}["{"<br/>".join(escape(t) for t in text)}"]:::{op}')
        lines.append("  end")
    return "\n".join(lines) + "\n"


def github_limits(text: str) -> str | None:
    """None when GitHub renders this Mermaid text; else what is over its limits.

    >>> github_limits(to_mermaid(graph_record("resnet152")))
    'too large for GitHub: 516 edges (GitHub draws at most 500); use --depth'
    """
    edges, size = text.count(" --> "), len(text)
    over = [f"{edges} edges (GitHub draws at most {GITHUB_MAX_EDGES})"] if edges > GITHUB_MAX_EDGES else []
    over += [f"{size:,} characters (GitHub draws at most {GITHUB_MAX_TEXT:,})"] if size > GITHUB_MAX_TEXT else []
    return "too large for GitHub: " + ", ".join(over) + "; use --depth" if over else None
