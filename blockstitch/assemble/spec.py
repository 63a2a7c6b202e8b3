"""The network spec (pydantic) and its resolution into a flat list of nodes.

A node is a block's fields plus three of its own: ``id`` (its name, which becomes its module name), ``from``
(a node name or a list of names; default the previous node) and ``repeat`` (a stack of that block named
``id.0``, ``id.1``…; only the first keeps its stride; later nodes may name the stack ``id`` for its last block).
Network-wide ``defaults`` fill fields a node left out; ``width``/``depth`` multiply channels and repeats
(``depth_rounding: ceil`` rounds repeats up, as EfficientNet does); ``drop_path_rate`` ramps stochastic depth
over every block with a ``drop_path`` field; ``outputs`` may be a mapping (the network then returns a dict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..blocks.ops import make_divisible
from ..blockspec import LAYOUTS, BlockSpec, Shape
from ..errors import RegistryError, SpecError, did_you_mean, pydantic_error, shown
from ..registry import block_classes, block_kinds, get_block
from .limits import MAX_CHANNELS, MAX_INPUT_DIM, MAX_INPUT_ELEMENTS, MAX_MULTIPLIER, MAX_NODES, MAX_REPEAT, \
    check_spec_numbers
from .base import with_base
from .names import MAX_NAME, name_problem
from .source import Loc, Located, path_text

__all__ = ["NetworkSpec", "Node", "Network", "resolve", "NODE_KEYS"]

NODE_KEYS = ("id", "from", "repeat")


class NetworkSpec(BaseModel):
    """A whole network: its input, defaults, multipliers and nodes."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Network name (also the class name of the built module)."""
    description: str = ""
    """Free text."""
    input: list[Annotated[int, Field(gt=0, le=MAX_INPUT_DIM)]] = Field(min_length=1, max_length=4)
    """Input shape without the batch, e.g. [3, 224, 224]."""
    input_layout: str | None = None
    """Layout of the input; default from its rank (b c h w for [C, H, W])."""
    defaults: dict[str, Any] = Field(default_factory=dict)
    """Field values applied to every node whose block has that field and does not set it (e.g. norm, act)."""
    width: float = Field(1.0, gt=0, le=MAX_MULTIPLIER)
    """Width multiplier for channel fields (rounded to `width_divisor`)."""
    depth: float = Field(1.0, gt=0, le=MAX_MULTIPLIER)
    """Depth multiplier for `repeat` counts."""
    depth_rounding: Literal["nearest", "ceil"] = "nearest"
    """How a scaled `repeat` is rounded: to the nearest count, or up (EfficientNet's `ceil(n × depth)`)."""
    width_divisor: int = Field(8, ge=1, le=MAX_CHANNELS)
    """Scaled channel counts are rounded to a multiple of this."""
    nodes: list[Any] = Field(min_length=1, max_length=MAX_NODES)
    """The nodes, in order: each a mapping with `kind`, the block's fields, and optional `id`, `from`, `repeat`."""
    outputs: list[str] | dict[str, str] | None = None
    """Nodes whose outputs the network returns (default: the last node); a mapping `{out: head, aux: aux}`
    makes the network return a dict with those keys (torchvision's segmentation models do)."""
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth: block i of the n blocks that have a `drop_path` field (and leave it unset) gets
    `drop_path_rate × i / n`, or `× i / (n − 1)` with `drop_path_ramp: to_last`; active in training only."""
    drop_path_ramp: Literal["before_last", "to_last"] = "before_last"
    """Whether the ramp reaches `drop_path_rate` after the last block (EfficientNet) or at it (ConvNeXt, Swin)."""
    baseline: str | None = None
    """A zoo name or spec path this network is compared with by `blockstitch check` (Δparams, ΔMACs)."""


@dataclass(frozen=True)
class Origin:
    """Where a node was written."""

    file: str | None
    line: int | None
    column: int | None
    path: str

    def where(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`SpecError.located`."""
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path}


@dataclass
class Node:
    """One resolved node: a validated block spec wired to named inputs."""

    id: str
    spec: BlockSpec
    inputs: tuple[str, ...]
    origin: Origin


@dataclass
class Network:
    """A resolved spec: the flat, validated node list the planner walks."""

    name: str
    input: Shape
    input_layout: str
    nodes: list[Node]
    outputs: list[str]
    aliases: dict[str, str]
    file: str | None = None
    description: str = ""
    baseline: str | None = None
    taps: dict[str, tuple[str, int]] | None = None
    """Named outputs of multi-output nodes: `enc.layer3` → (`enc`, 3)."""
    output_keys: list[str] | None = None
    """Keys of the returned dict, one per output, when `outputs:` was a mapping."""


def _scaled(spec: BlockSpec, net: NetworkSpec) -> BlockSpec:
    if net.width == 1.0:
        return spec
    update = {}
    for name in spec.channel_fields:
        value = getattr(spec, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            update[name] = int(make_divisible(value * net.width, net.width_divisor))
    return spec.model_copy(update=update)


def _check_defaults(net: NetworkSpec, located: Located) -> None:
    known: set[str] = set()
    for kind in {raw["kind"] for raw in net.nodes if isinstance(raw, dict) and isinstance(raw.get("kind"), str)}:
        try:  # the kinds this spec uses first: asking for every block imports every family
            known.update(get_block(kind).model_fields)
        except RegistryError:
            pass  # the node itself reports its unknown kind, with its location
    if any(key not in known for key in net.defaults):
        known = {f for cls in block_classes() for f in cls.model_fields}
    known.discard("kind")
    for key in net.defaults:
        if key not in known:
            raise located.error(f"defaults: '{key}' is not a field of any block{did_you_mean(key, known)}",
                                ("defaults", key))


def _node_spec(raw: dict[str, Any], net: NetworkSpec, located: Located, loc: Loc, node_id: str) -> BlockSpec:
    kind = raw.get("kind")
    if kind is None:
        raise located.error("node has no 'kind'", loc, node=node_id, expected="a block kind",
                            hint="`blockstitch blocks` lists them: " + ", ".join(block_kinds()[:8]) + ", …")
    if not isinstance(kind, str):
        raise located.error("'kind' must be a string", (*loc, "kind"), node=node_id, found=repr(kind))
    try:
        cls = get_block(kind)
    except RegistryError as err:
        raise located.error(str(err), (*loc, "kind"), node=node_id, hint="`blockstitch blocks` lists every kind") \
            from None
    fields = {k: v for k, v in raw.items() if k not in NODE_KEYS}
    for key, value in net.defaults.items():
        if key in cls.model_fields and key not in fields:
            fields[key] = value
    try:
        spec = _scaled(cls.model_validate(fields), net)
    except ValidationError as err:
        raise pydantic_error(err, loc, model=cls, also=NODE_KEYS, node=node_id, located=located) from None
    except (ValueError, TypeError, ArithmeticError) as err:  # a validator that is not pydantic's own
        raise located.error(f"kind '{kind}': {str(err).splitlines()[0] if str(err) else type(err).__name__}", loc,
                            node=node_id) from None
    try:  # limits before loops: no block is planned with a count it could hang on
        check_spec_numbers(dict(spec), f"kind '{kind}'")
    except SpecError as err:
        name = (err.found or "").split(".")[0]
        field_loc = (*loc, name) if name in raw else loc
        line, column = located.mark(field_loc)
        err.found = None
        raise err.located(file=located.file, line=line, column=column, node=node_id,
                          path=path_text(field_loc)) from None
    return spec


def _inputs(raw: dict[str, Any], located: Located, loc: Loc, node_id: str, previous: str) -> tuple[str, ...]:
    src = raw.get("from", previous)
    names = [src] if isinstance(src, str) else src
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise located.error("'from' must be a node name or a non-empty list of names", (*loc, "from"),
                            node=node_id, found=repr(src))
    return tuple(names)


def _count(raw: Any, net: NetworkSpec) -> int:
    """How many nodes one written node expands to (1 for a node without a valid `repeat`)."""
    repeat = raw.get("repeat") if isinstance(raw, dict) else None
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        return 1
    scaled = repeat * net.depth
    return max(1, math.ceil(scaled - 1e-9) if net.depth_rounding == "ceil" else round(scaled))


def resolve(located: Located) -> Network:
    """Validate a loaded spec and expand it into a :class:`Network` of single nodes (not yet wired)."""
    located = with_base(located)  # `base:` specs (EfficientNet-B1…B7 scale B0)
    try:
        net = NetworkSpec.model_validate(located.data)
    except ValidationError as err:
        raise pydantic_error(err, model=NetworkSpec, what="the network spec", located=located) from None
    _check_defaults(net, located)
    if len(net.name) > MAX_NAME:
        raise located.error(f"the network's name has {len(net.name):,} characters (at most {MAX_NAME})", ("name",),
                            hint="the name becomes file names (export, graph): keep it short")
    elements = 1
    for size in net.input:
        elements *= size
    if elements > MAX_INPUT_ELEMENTS:
        raise located.error(f"the input has {elements:,} elements per sample (at most {MAX_INPUT_ELEMENTS:,})",
                            ("input",), hint="limits before loops: see SECURITY.md")
    counts = [_count(raw, net) for raw in net.nodes]
    worst = max(range(len(counts)), key=counts.__getitem__)
    if counts[worst] > MAX_REPEAT:
        raise located.error(f"'repeat' expands to {counts[worst]:,} nodes (at most {MAX_REPEAT:,} after `depth`)",
                            ("nodes", worst, "repeat"), hint="limits before loops: see SECURITY.md")
    total = sum(counts)
    if total > MAX_NODES:
        raise located.error(f"the network expands to {total:,} nodes (at most {MAX_NODES:,}, `repeat` and `depth` "
                            "included)", ("nodes",), hint="limits before loops: see SECURITY.md")
    layout = net.input_layout or next((lay for lay, r in LAYOUTS.items() if r == len(net.input) + 1), None)
    if layout not in LAYOUTS or LAYOUTS[layout] != len(net.input) + 1:
        raise located.error(f"input_layout '{layout}' does not fit an input of {len(net.input)} dims",
                            ("input_layout",), expected=", ".join(LAYOUTS))
    nodes: list[Node] = []
    aliases: dict[str, str] = {}
    previous = "input"
    for i, raw in enumerate(net.nodes):
        loc: Loc = ("nodes", i)
        if not isinstance(raw, dict):
            raise located.error("each node must be a mapping with a 'kind'", loc, found=repr(raw))
        node_id = raw.get("id", f"{raw.get('kind', 'node')}_{i}")
        problem = name_problem(node_id) if isinstance(node_id, str) else "not text"
        if problem is not None or node_id == "input":
            raise located.error(f"invalid node id {shown(repr(node_id), 80)}: {problem or 'input is reserved'}",
                                (*loc, "id"), expected="a name like conv1 or layer1.0 ('input' is reserved)")
        spec = _node_spec(raw, net, located, loc, node_id)
        inputs = _inputs(raw, located, loc, node_id, previous)
        line, col = located.mark(loc)
        origin = Origin(located.file, line, col, path_text(loc) or "")
        repeat = raw.get("repeat")
        if repeat is None:
            nodes.append(Node(node_id, spec, inputs, origin))
            previous = node_id
            continue
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1 or _count(raw, net) > MAX_REPEAT:
            raise located.error(f"'repeat' must be a positive integer (at most {MAX_REPEAT:,} after `depth`)",
                                (*loc, "repeat"), node=node_id, found=repr(repeat))
        count = _count(raw, net)
        for j in range(count):
            if j:
                fields = type(spec).model_fields
                reset = {f: 1 for f in spec.stride_fields if f in fields}
                reset.update({f: fields[f].default for f in spec.first_only_fields if f in fields})
                spec = spec.model_copy(update=reset)
            nodes.append(Node(f"{node_id}.{j}", spec, inputs, origin))
            inputs = (f"{node_id}.{j}",)
        aliases[node_id] = previous = f"{node_id}.{count - 1}"
    _ramp_drop_path(nodes, net)
    keys = list(net.outputs) if isinstance(net.outputs, dict) else None
    outputs = list(net.outputs.values()) if isinstance(net.outputs, dict) else net.outputs or [nodes[-1].id]
    taps = {f"{n.id}.{name}": (n.id, i) for n in nodes for i, name in enumerate(_output_names(n))}
    baseline = net.baseline
    if baseline is not None and located.file is not None and (Path(located.file).parent / baseline).is_file():
        baseline = str(Path(located.file).parent / baseline)  # a relative path means relative to this spec
    return Network(net.name, tuple(net.input), layout, nodes, outputs, aliases, located.file, net.description,
                   baseline, taps, keys)


def _output_names(node: Node) -> tuple[str, ...]:
    try:
        return tuple(node.spec.output_names())
    except SpecError as err:
        raise err.located(file=node.origin.file, line=node.origin.line, column=node.origin.column,
                          node=node.id) from None


def _ramp_drop_path(nodes: list[Node], net: NetworkSpec) -> None:
    """Give block i of the n blocks with an unset `drop_path` field `rate × i / n` (or `/ (n − 1)`)."""
    if net.drop_path_rate == 0:
        return
    ramped = [n for n in nodes if "drop_path" in type(n.spec).model_fields and "drop_path" not in n.spec.model_fields_set]
    steps = len(ramped) - (net.drop_path_ramp == "to_last")
    for i, node in enumerate(ramped):
        node.spec = node.spec.model_copy(update={"drop_path": net.drop_path_rate * i / max(steps, 1)})
