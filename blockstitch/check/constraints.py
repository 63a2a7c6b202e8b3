"""Inferring the rule a module obeys from which sizes worked: any size, a fixed size, multiples of k, square
only, or a minimum size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Any

__all__ = ["Constraint", "infer_constraints"]


@dataclass
class Constraint:
    """`{"axis": "h", "rule": "multiple_of", "value": 8}`; rules: multiple_of, fixed, equal, min."""

    axis: str
    rule: str
    value: int | str


def infer_constraints(layout: str, sweep: list[dict[str, Any]]) -> tuple[list[Constraint], str]:
    """The constraints consistent with the sweep, and a sentence stating the rule."""
    ok = [tuple(s["size"]) for s in sweep if s["ok"]]
    bad = [tuple(s["size"]) for s in sweep if not s["ok"]]
    axes = ("n",) if layout == "b n c" else ("h", "w")
    if not bad:
        return [], "works at every size tried"
    if not ok:
        return [], "works at no size tried"
    core = [size for size in ok if min(size) > 1] or ok  # size 1 broadcasts against anything: not evidence
    if len(set(core)) == 1:
        fixed = core[0]
        note = " (and at 1, by broadcasting)" if len(core) < len(ok) else ""
        return ([Constraint(a, "fixed", v) for a, v in zip(axes, fixed)],
                f"works only at {'×'.join(map(str, fixed))}{note}")
    if len(axes) == 2 and all(h == w for h, w in ok) and all(h != w for h, w in bad):
        return [Constraint("h", "equal", "w")], "works only when h = w (square inputs)"
    k = reduce(math.gcd, [v for size in ok for v in size])
    if k > 1 and all(any(v % k for v in size) for size in bad):
        return [Constraint(a, "multiple_of", k) for a in axes], f"works only when {' and '.join(axes)} are multiples " \
                                                                 f"of {k}"
    smallest = min(min(size) for size in ok)
    if all(min(size) < smallest for size in bad) and all(min(size) >= smallest for size in ok):
        return [Constraint(a, "min", smallest) for a in axes], f"works only from {smallest} up"
    return [], "fails at some sizes without a simple rule: " + ", ".join("×".join(map(str, b)) for b in bad)
