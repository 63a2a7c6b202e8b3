"""SVG drawn from :mod:`blockstitch.graph.layout`: standalone, valid XML, no fonts or packages needed."""

from __future__ import annotations

from xml.sax.saxutils import escape

from .layout import BOX_H, CHAR_W, MARGIN, layout
from .records import EDIT_STYLES, GraphRecord, legend_lines

__all__ = ["to_svg"]

FONT = 'font-family="ui-monospace,Menlo,Consolas,monospace" font-size="11"'
LINE_H = 14.0


def to_svg(record: GraphRecord) -> str:
    """The record as one SVG document: rounded boxes with name and ``kind · shape``, curved edges with arrows,
    edit colours and a legend at the top right.

    >>> to_svg(graph_record("lenet5")).startswith("<svg")
    True
    """
    lay = layout(record)
    legend = legend_lines(record, per_line=2)
    legend_w = max((len(t) for _, lines in legend for t in lines), default=0) * CHAR_W + 24
    legend_h = sum(len(lines) * LINE_H + 12 for _, lines in legend)
    legend_x = lay.width
    width = lay.width + (legend_w + MARGIN if legend else 0)
    height = max(lay.height, legend_h + 2 * MARGIN + LINE_H)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}">',
           f"<title>{escape(record.name)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker></defs>',
           f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
           '<g class="edges" fill="none" stroke="#555555" stroke-width="1.2">']
    for a, b, d in lay.edges:
        out.append(f'<path d="{d}" marker-end="url(#arrow)"><title>{escape(a)} → {escape(b)}</title></path>')
    out.append("</g>")
    out.append(f'<g class="nodes" {FONT}>')
    for node in record.nodes:
        box, (fill, stroke) = lay.boxes[node.name], node.style
        title, detail = node.label
        out.append(f'<g class="node" data-name="{escape(node.name, {chr(34): "&quot;"})}">'
                   f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="6" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if node.edit else 1}"/>'
                   f'<text x="{box.cx:.1f}" y="{box.y + 15:.1f}" text-anchor="middle" font-weight="bold">'
                   f"{escape(title)}</text>"
                   f'<text x="{box.cx:.1f}" y="{box.y + BOX_H - 8:.1f}" text-anchor="middle" fill="#333333">'
                   f"{escape(detail)}</text></g>")
    out.append("</g>")
    if legend:
        y = MARGIN
        out.append(f'<g class="legend" {FONT}>')
        out.append(f'<text x="{legend_x:.1f}" y="{y + 10:.1f}" font-weight="bold">legend</text>')
        y += LINE_H
        for op, lines in legend:
            fill, stroke = EDIT_STYLES[op]
            h = len(lines) * LINE_H + 8
            out.append(f'<rect x="{legend_x:.1f}" y="{y:.1f}" width="{legend_w:.1f}" height="{h:.1f}" rx="6" '
                       f'fill="{fill}" stroke="{stroke}" stroke-width="2"/>')
            for i, text in enumerate(lines):
                weight = ' font-weight="bold"' if i == 0 else ""
                out.append(f'<text x="{legend_x + 10:.1f}" y="{y + 15 + i * LINE_H:.1f}"{weight}>'
                           f"{escape(text)}</text>")
            y += h + 4
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
