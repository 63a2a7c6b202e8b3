"""A layered top-down layout, computed here (no graphviz): boxes in rows by longest path from the input,
ordered in each row by the mean position of their inputs, packed without overlap; long edges routed beside
the boxes they pass."""

from __future__ import annotations

from dataclasses import dataclass

from .records import GraphRecord

__all__ = ["Box", "Layout", "layout", "CHAR_W", "BOX_H"]

CHAR_W = 6.6
"""Width of one character of the 11px monospace font the SVG uses."""
BOX_H = 36.0
GAP_X, GAP_Y, MARGIN, PAD = 18.0, 30.0, 20.0, 10.0


@dataclass
class Box:
    """A node's rectangle: left, top, width, height, and its row."""

    x: float
    y: float
    w: float
    h: float
    row: int

    @property
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2


@dataclass
class Layout:
    """Boxes by node name, edge paths (SVG path data) and the canvas size."""

    boxes: dict[str, Box]
    edges: list[tuple[str, str, str]]
    """(from, to, SVG path ``d``)."""
    width: float
    height: float


def _rows(record: GraphRecord) -> dict[str, int]:
    order = {n.name: i for i, n in enumerate(record.nodes)}
    preds: dict[str, list[str]] = {n.name: [] for n in record.nodes}
    for a, b in record.edges:
        if order[a] < order[b]:  # execution order is a topological order; a back edge does not lift a row
            preds[b].append(a)
    rows: dict[str, int] = {}
    for n in record.nodes:
        rows[n.name] = 1 + max((rows[p] for p in preds[n.name]), default=-1)
    return rows


def layout(record: GraphRecord) -> Layout:
    """Place every node of ``record``.

    >>> box = layout(graph_record("lenet5")).boxes["input"]
    >>> box.row
    0
    """
    rows = _rows(record)
    preds: dict[str, list[str]] = {n.name: [] for n in record.nodes}
    for a, b in record.edges:
        preds[b].append(a)
    widths = {n.name: max(len(t) for t in n.label) * CHAR_W + 2 * PAD for n in record.nodes}
    boxes: dict[str, Box] = {}
    for r in range(max(rows.values(), default=-1) + 1):
        members = [n.name for n in record.nodes if rows[n.name] == r]
        want = {}
        for name in members:
            placed = [boxes[p].cx for p in preds[name] if p in boxes]
            want[name] = sum(placed) / len(placed) if placed else 0.0
        members.sort(key=lambda m: want[m])  # stable: ties keep execution order
        y = MARGIN + r * (BOX_H + GAP_Y)
        right, placed_boxes = float("-inf"), []
        for name in members:
            x = max(want[name] - widths[name] / 2, right + GAP_X)
            placed_boxes.append((name, Box(x, y, widths[name], BOX_H, r)))
            right = x + widths[name]
        shift = sum(want[n] - b.cx for n, b in placed_boxes) / len(placed_boxes)  # keep the row centred
        for name, box in placed_boxes:
            box.x += shift
            boxes[name] = box
    left = min((b.x for b in boxes.values()), default=0.0)
    for box in boxes.values():
        box.x += MARGIN - left
    width = max((b.x + b.w for b in boxes.values()), default=0.0) + MARGIN
    height = max((b.y + b.h for b in boxes.values()), default=0.0) + MARGIN
    edges, lanes = [], 0
    for a, b in record.edges:
        path, lanes = _route(boxes[a], boxes[b], boxes, lanes)
        edges.append((a, b, path))
        width = max(width, _max_x(path) + MARGIN)
    return Layout(boxes, edges, width, height)


def _route(src: Box, dst: Box, boxes: dict[str, Box], lanes: int) -> tuple[str, int]:
    """A curve from the bottom of ``src`` to the top of ``dst``; an edge skipping rows goes around the boxes
    of those rows on their right (each such edge in its own lane)."""
    x1, y1, x2, y2 = src.cx, src.y + src.h, dst.cx, dst.y
    if dst.row == src.row + 1 or dst.row <= src.row:
        mid = (y1 + y2) / 2
        return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}", lanes
    lo, hi = min(x1, x2) - 1, max(x1, x2) + 1
    between = [b for b in boxes.values() if src.row < b.row < dst.row and b.x < hi and b.x + b.w > lo]
    if not between:
        return f"M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}", lanes
    lane = max(b.x + b.w for b in between) + 10 + 6 * (lanes % 4)
    rows = [b for b in boxes.values() if src.row < b.row < dst.row]
    while crossed := [b for b in rows if b.x - 4 <= lane <= b.x + b.w + 4]:  # step right past every box in the way
        lane = max(b.x + b.w for b in crossed) + 10
    top, bottom = y1 + GAP_Y / 2, y2 - GAP_Y / 2
    return (f"M{x1:.1f},{y1:.1f} Q{x1:.1f},{top:.1f} {lane:.1f},{top:.1f} L{lane:.1f},{bottom:.1f} "
            f"Q{x2:.1f},{bottom:.1f} {x2:.1f},{y2:.1f}"), lanes + 1


def _max_x(path: str) -> float:
    xs = [float(p.split(",")[0].lstrip("MCLQ")) for p in path.split() if "," in p]
    return max(xs)
