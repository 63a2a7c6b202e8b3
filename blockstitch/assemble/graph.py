"""Wiring checks and order: unique ids, `from` names that exist, the right number of inputs, no cycles."""

from __future__ import annotations

from ..errors import SpecError, did_you_mean
from .spec import Network, Node

__all__ = ["wire"]


def _fail(node: Node, message: str, **kw: str | None) -> SpecError:
    return SpecError(message, node=node.id, **node.origin.where(), **kw)  # type: ignore[arg-type]


def wire(net: Network) -> list[Node]:
    """Resolve aliases in every node's inputs and return the nodes in a valid execution order.

    Raises :class:`SpecError` for a duplicate id, an id that is also a container of others, a `from` that
    names no node, the wrong number of inputs for the block, an unknown output, or a cycle.
    """
    by_id: dict[str, Node] = {}
    for node in net.nodes:
        if node.id in by_id:
            first = by_id[node.id].origin
            raise _fail(node, f"duplicate node id '{node.id}' (first used at line {first.line})",
                        hint="give each node its own id")
        by_id[node.id] = node
    for node_id in by_id:
        parts = node_id.split(".")
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            if prefix in by_id:
                raise _fail(by_id[prefix], f"node id '{prefix}' is also the container of '{node_id}'",
                            hint="a module cannot be both a block and a folder of blocks: rename one")
    taps = net.taps or {}
    names = set(by_id) | set(net.aliases) | set(taps) | {"input"}
    for node in net.nodes:
        resolved = []
        for src in node.inputs:
            if src not in names:
                raise _fail(node, f"'from' names '{src}', which is not a node{did_you_mean(src, names)}",
                            expected="a node id defined in this spec, or 'input'")
            resolved.append(net.aliases.get(src, src))
        node.inputs = tuple(resolved)
        arity = type(node.spec).arity
        if arity is None and len(node.inputs) < 2:
            raise _fail(node, f"'{node.spec.kind}' merges two or more inputs but got {len(node.inputs)}",
                        hint="list them: from: [a, b]")
        if arity is not None and len(node.inputs) != arity:
            hint = "merge them first with a 'concat' or 'add' node" if arity == 1 else \
                f"list {arity} inputs: from: [{', '.join(['…'] * arity)}]"
            raise _fail(node, f"'{node.spec.kind}' takes {arity} input(s) but 'from' gives {len(node.inputs)}",
                        found=", ".join(node.inputs), hint=hint)
    for i, out in enumerate(net.outputs):
        if out not in names or out == "input":
            raise SpecError(f"output '{out}' is not a node{did_you_mean(out, names)}", file=net.file,
                            path=f"outputs.{net.output_keys[i]}" if net.output_keys else f"outputs[{i}]")
        net.outputs[i] = net.aliases.get(out, out)
    return _toposort(net.nodes, by_id, {tap: owner for tap, (owner, _) in taps.items()})


def _toposort(nodes: list[Node], by_id: dict[str, Node], owners: dict[str, str]) -> list[Node]:
    """Depth-first order (iterative: deep networks must not hit the recursion limit)."""
    order: list[Node] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in nodes:
        if state.get(root.id):
            continue
        state[root.id] = 1
        path, stack = [root.id], [(root, iter(root.inputs))]
        while stack:
            node, pending = stack[-1]
            src = next((owners.get(s, s) for s in pending if s != "input"), None)
            if src is None:
                stack.pop()
                path.pop()
                state[node.id] = 2
                order.append(node)
            elif state.get(src) == 1:
                cycle = path[path.index(src):] + [src]
                raise _fail(by_id[src], "the nodes form a cycle: " + " ← ".join(cycle),
                            hint="a node's `from` must name nodes that do not depend on it")
            elif state.get(src) is None:
                state[src] = 1
                path.append(src)
                stack.append((by_id[src], iter(by_id[src].inputs)))
    return order
