"""Diagrams of any network — Mermaid (renders on GitHub), Graphviz DOT, or SVG laid out here (no system package).

Boxes carry module paths (`layer1.0.conv1`), kinds and output shapes found on meta tensors; `depth` collapses
to stages; blocks an edit spec added, replaced, wrapped or removed are coloured and listed in a legend.

>>> text = graph("cbam_resnet50", format="mermaid", depth=2)
>>> "layer1.0" in text and "cbam" in text
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import SpecError, did_you_mean
from ..meta import natural_input
from ..output import writable, write_file
from ..progress import ProgressLike, Steps
from ..subject import NETWORK_KINDS, Subject, subject
from .records import GraphNode, GraphRecord, collapse
from .trace import trace_graph

if TYPE_CHECKING:
    from ..stitch import StitchReport

__all__ = ["graph", "graph_record", "render", "FORMATS", "GraphRecord", "GraphNode"]

FORMATS = ("mermaid", "dot", "svg")
"""The diagram formats."""


def _kinds(model: nn.Module) -> dict[str, str]:
    meta = getattr(model, "meta", None)
    plan = meta.get("blockstitch_plan") if isinstance(meta, dict) else None
    return {s.name: s.kind for s in plan.steps} if plan is not None else {}


def _edits(report: StitchReport | None) -> dict[str, tuple[str, str]]:
    """Module path → (op, kind) of each edit: the new block (insert, replace), the wrapped or removed module."""
    if report is None:
        return {}
    return {(e.module if e.op in ("insert", "replace") else e.path): (e.op, e.kind) for e in report.edits}


def graph_record(target: Subject | Any, input_shape: Sequence[int] | None = None, depth: int | None = None,
                 report: StitchReport | None = None, batch: int = 1) -> GraphRecord:
    """The graph of ``target`` as plain records: a zoo name, a spec path or dict, an edit spec, ``timm:<name>``,
    a Plan, or any ``nn.Module`` (never called: a meta shadow runs). Pass ``report`` (from
    :func:`blockstitch.stitch`) to colour what a stitch changed in a module you stitched yourself.

    >>> record = graph_record("resnet18", depth=1)
    >>> record.node("layer1").shape
    (1, 64, 56, 56)
    """
    if depth is not None and depth < 1:
        raise SpecError(f"depth must be ≥ 1, got {depth}")
    found = subject(target, accept=NETWORK_KINDS | {"code"}, input_shape=input_shape)  # a class: its defaults
    model, name = found.module("meta"), found.name
    report = report or found.report
    shape = found.input_shape or natural_input(model)  # the caller's, an edit spec's `input:`, the network's
    if shape is None:
        raise SpecError(f"drawing {name} needs an input shape without the batch, e.g. input_shape=(3, 224, 224)",
                        hint="on the command line: --input 3,224,224")
    kinds, edits = _kinds(model), _edits(report)
    record = trace_graph(model, (batch, *shape), name, kinds, edits)
    for node in record.nodes:
        if node.edit is not None:
            record.legend.setdefault(node.edit, []).append(node.name)
    for op, kind in edits.values():
        record.edit_counts[op] = record.edit_counts.get(op, 0) + 1
        if kind not in record.edit_kinds.setdefault(op, []):
            record.edit_kinds[op].append(kind)
    if depth is None:
        return record

    def group_kind(path: str) -> str:
        if path in kinds:
            return kinds[path]
        module = model.get_submodule(path)
        children = [f"{path}.{c}" for c, _ in module.named_children()]
        inner = {kinds.get(c) for c in children}
        if len(inner) == 1 and None not in inner:  # a repeat stack: `bottleneck ×3`
            return f"{inner.pop()} ×{len(children)}"
        return type(module).__name__

    return collapse(record, depth, group_kind)


def _known(format: str) -> str:
    if format not in FORMATS:
        raise SpecError(f"unknown graph format '{format}'{did_you_mean(format, FORMATS)}",
                        expected=" | ".join(FORMATS))
    return format


def render(record: GraphRecord, format: str) -> str:
    """The record as Mermaid, DOT or SVG text.

    >>> render(graph_record("lenet5", depth=1), "dot").splitlines()[0]
    'digraph "lenet5" {'
    """
    if _known(format) == "mermaid":
        from .mermaid import to_mermaid

        return to_mermaid(record)
    if format == "dot":
        from .dot import to_dot

        return to_dot(record)
    from .svg import to_svg

    return to_svg(record)


def graph(target: Subject | Any, format: str = "mermaid", path: str | Path | None = None, depth: int | None = None,
          input_shape: Sequence[int] | None = None, report: StitchReport | None = None,
          progress: ProgressLike = None) -> str:
    """Draw ``target`` (see :func:`graph_record`) as ``format`` (`mermaid`, `dot` or `svg`); write it to
    ``path`` when given. Returns the text. ``progress`` hears of two steps, tracing and rendering
    (:mod:`blockstitch.progress`).

    >>> svg = graph("resnet18", "svg", "resnet18.svg", depth=1)
    """
    target_file = writable(Path(path)) if path is not None else None  # both checked before any work
    with Steps(progress, 2) as steps:
        steps.next("tracing")
        record = graph_record(target, input_shape, depth, report)
        steps.next(f"rendering {_known(format)}")
        text = render(record, format)
    if target_file is not None:
        write_file(target_file, text)  # whole or not at all, under the path's lock; OS failures in one line
    return text
