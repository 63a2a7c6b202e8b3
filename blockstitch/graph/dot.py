"""Graphviz DOT text (for `dot -Tpdf`, or any DOT viewer): rounded boxes, edit colours, a legend cluster."""

from __future__ import annotations

from .records import EDIT_STYLES, GraphRecord, legend_lines

__all__ = ["to_dot", "quote"]


def quote(text: str) -> str:
    """A double-quoted DOT string (backslashes and quotes escaped, newlines as ``\\n``).

    >>> quote('say "hi"')
    '"say \\\\"hi\\\\""'
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(record: GraphRecord) -> str:
    """A ``digraph`` laid out top to bottom, one box per node, coloured by edit.

    >>> to_dot(graph_record("lenet5")).startswith('digraph "lenet5"')
    True
    """
    ids = {n.name: f"n{i}" for i, n in enumerate(record.nodes)}
    lines = [f"digraph {quote(record.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [color="#555555", arrowsize=0.6];']
    for n in record.nodes:
        fill, stroke = n.style
        lines.append(f"  {ids[n.name]} [label={quote(chr(10).join(n.label))}, fillcolor={quote(fill)}, "
                     f"color={quote(stroke)}{', penwidth=2' if n.edit else ''}];")
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in record.edges]
    if record.legend:
        lines += ["  subgraph cluster_legend {", '    label="legend"; fontname="Helvetica"; color="#999999";']
        for op, text in legend_lines(record):
            fill, stroke = EDIT_STYLES[op]
            lines.append(f"    legend_{op} [label={quote(chr(10).join(text))}, fillcolor={quote(fill)}, "
                         f"color={quote(stroke)}, penwidth=2];")
        lines.append("  }")
    return "\n".join(lines) + "\n}\n"
