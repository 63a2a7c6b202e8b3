"""The graph of a network as plain records — nodes, edges, legend — that every renderer reads.

Records know nothing of torch; :mod:`blockstitch.graph.trace` fills them from one meta forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import fmt_shape

__all__ = ["GraphNode", "GraphRecord", "EDIT_STYLES", "collapse", "legend_lines"]

EDIT_STYLES: dict[str, tuple[str, str]] = {
    "insert": ("#c8f7c5", "#2e7d32"),
    "replace": ("#ffe0b2", "#e65100"),
    "wrap": ("#d6e4ff", "#1a4fb4"),
    "remove": ("#e0e0e0", "#616161"),
}
"""Fill and stroke colour of a node an edit spec added (insert), replaced, wrapped or removed."""

PLAIN_STYLE = ("#ffffff", "#555555")
IO_STYLE = ("#f2f2f2", "#555555")


@dataclass
class GraphNode:
    """One box of the diagram: a module (or a group of them, collapsed by depth), the input or an output."""

    name: str
    """Module path (`layer1.0.conv1`), or `input` / `output`."""
    kind: str
    """Block kind (`bottleneck`, `cbam`) or module class (`Conv2d`); `×3` when a group repeats one kind."""
    shape: tuple[int, ...] | None
    """Output shape (batch first), found on meta tensors."""
    edit: str | None = None
    """`insert`, `replace`, `wrap` or `remove` when an edit spec made this node; None otherwise."""
    io: bool = False
    """The network's input or output."""

    @property
    def label(self) -> tuple[str, str]:
        """Two lines: the name, then ``kind · shape``."""
        return self.name, f"{self.kind} · {fmt_shape(self.shape)}" if self.shape is not None else self.kind

    @property
    def style(self) -> tuple[str, str]:
        """(fill, stroke) colours."""
        if self.edit is not None:
            return EDIT_STYLES[self.edit]
        return IO_STYLE if self.io else PLAIN_STYLE


@dataclass
class GraphRecord:
    """A network as a directed acyclic graph, nodes in execution order.

    >>> record = graph_record("resnet18", depth=1)
    >>> [n.name for n in record.nodes][:3]
    ['input', 'conv1', 'bn1']
    """

    name: str
    input_shape: tuple[int, ...]
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    """(from, to) node names, each once."""
    legend: dict[str, list[str]] = field(default_factory=dict)
    """Edit op → the node names it made (only ops that occur)."""
    edit_kinds: dict[str, list[str]] = field(default_factory=dict)
    """Edit op → the block kinds it put in (`insert` → `cbam`)."""
    edit_counts: dict[str, int] = field(default_factory=dict)
    """Edit op → how many modules it made (16 CBAMs, even when `depth` draws them inside 4 stages)."""

    def node(self, name: str) -> GraphNode:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "input_shape": list(self.input_shape),
                "nodes": [{"name": n.name, "kind": n.kind, "shape": None if n.shape is None else list(n.shape),
                           "edit": n.edit} for n in self.nodes],
                "edges": [list(e) for e in self.edges], "legend": self.legend, "edit_kinds": self.edit_kinds,
                "edit_counts": self.edit_counts}


def collapse(record: GraphRecord, depth: int, group_kind: Any) -> GraphRecord:
    """The same graph with every box deeper than ``depth`` path components merged into its ancestor at that
    depth (``depth=1``: `layer1`, `layer2` … as one box each). ``group_kind(path)`` names a group's kind.

    A group keeps the output shape of its last box and the edit of any box inside (listed in the legend).

    >>> [n.name for n in collapse(graph_record("resnet18"), 1, str).nodes][5:7]
    ['layer1', 'layer2']
    """
    def group(name: str) -> str:
        if "." not in name or name.count(".") < depth:
            return name
        return ".".join(name.split(".")[:depth])

    nodes: dict[str, GraphNode] = {}
    mapping: dict[str, str] = {}
    for n in record.nodes:
        base = n.name.split("#")[0]  # `name#2`: a module's second call
        g = n.name if n.io or group(base) == base else group(base)
        mapping[n.name] = g
        if g == n.name:
            nodes[g] = GraphNode(n.name, n.kind, n.shape, n.edit, n.io)
        elif g not in nodes:
            nodes[g] = GraphNode(g, group_kind(g), n.shape, n.edit)
        else:
            nodes[g].shape = n.shape
            nodes[g].edit = nodes[g].edit or n.edit
        if n.edit is not None and g != n.name and f"+ {n.kind}" not in nodes[g].kind:
            nodes[g].kind += f" + {n.kind}"  # `bottleneck + cbam`
    edges: dict[tuple[str, str], None] = {}
    for a, b in record.edges:
        ga, gb = mapping[a], mapping[b]
        if ga != gb:
            edges[(ga, gb)] = None
    legend: dict[str, list[str]] = {}
    for op, names in record.legend.items():
        legend[op] = list(dict.fromkeys(mapping[n] for n in names))
    return GraphRecord(record.name, record.input_shape, list(nodes.values()), list(edges), legend, record.edit_kinds,
                       record.edit_counts)


LEGEND_TEXT = {"insert": "inserted", "replace": "replaced", "wrap": "wrapped", "remove": "removed"}


def legend_lines(record: GraphRecord, per_line: int = 3) -> list[tuple[str, list[str]]]:
    """Per edit op: a heading (``inserted: 16 × cbam``) and then the names it made, ``per_line`` a line.

    >>> legend_lines(graph_record("cbam_resnet50", depth=2))[0][1][0]
    'inserted: 16 × cbam'
    """
    out = []
    for op, names in record.legend.items():
        kinds = ", ".join(record.edit_kinds.get(op) or sorted({record.node(n).kind for n in names}))
        lines = [f"{LEGEND_TEXT[op]}: {record.edit_counts.get(op, len(names))} × {kinds}"]
        lines += [", ".join(names[i:i + per_line]) for i in range(0, len(names), per_line)]
        out.append((op, lines))
    return out
