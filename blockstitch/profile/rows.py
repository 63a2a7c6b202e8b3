"""The rows of a module's profile: which modules get a row, in the order they ran, what each row's kind is, and
which counted work belongs to which row.

A row is a module ``depth`` levels down (or a leaf above that depth), except a container the forward never
calls as a whole (a repeat stack a blockstitch network runs child by child): its children that ran stand in its
place, so no work falls between rows. Rows are listed in the order the forward first entered them, so a stitched
block — registered beside its target, run from the target's hook — sits where it runs, not where it was
registered. Work is attributed to the row that holds the module it ran in (the longest row path that is the
module's own or an ancestor's).

>>> rows = profile_rows(model, depth=1, entered=["conv1", "layer1.0", "layer1.1", "layer1_se", "fc"])
>>> rows                                # layer1 ran child by child; layer1_se runs from layer1.1's hook
['conv1', 'layer1.0', 'layer1.1', 'layer1_se', 'fc']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from ..stitch import StitchReport

__all__ = ["profile_rows", "row_kinds", "row_of", "fold", "edit_rows"]


def _depth(name: str) -> int:
    return name.count(".") + 1


def profile_rows(module: nn.Module, depth: int, entered: Iterable[str]) -> list[str]:
    """Row names for ``module`` at ``depth`` (1 = top-level children), in the order the forward first entered
    them (``entered``: every module name, in call order); rows that never ran keep their place after the row
    defined before them.

    >>> profile_rows(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 1, ["0", "1"])
    ['0', '1']
    """
    first: dict[str, int] = {}
    for i, name in enumerate(entered):
        first.setdefault(name, i)
    children = {n: [f"{n}.{c}" if n else c for c, _ in m.named_children()] for n, m in module.named_modules()}

    def ran_inside(name: str) -> bool:
        return name in first or any(ran_inside(c) for c in children.get(name, ()))

    def expand(name: str) -> list[str]:
        """The name itself when it ran as a whole (or nothing inside it ran), else its children (expanded so)."""
        if name in first or not ran_inside(name):
            return [name]
        return [row for c in children.get(name, ()) for row in expand(c)]

    chosen = [n for n in children if n and (_depth(n) == depth or (_depth(n) < depth and not children[n]))]
    rows = [row for n in chosen for row in expand(n)]
    keyed, last = [], -1.0
    for place, row in enumerate(rows):  # a row that never ran follows the one defined before it
        if row in first:
            last = float(first[row])
        keyed.append((float(first[row]) if row in first else last + 1e-6 * (place + 1), place, row))
    return [row for _, _, row in sorted(keyed)]


def row_kinds(module: nn.Module, rows: Iterable[str]) -> dict[str, str]:
    """Each row's kind: the block kind where ``module`` was built by blockstitch from a plan (an edit of a zoo
    network keeps its base's ``bottleneck``), else the module's class name.

    >>> row_kinds(nn.Sequential(nn.Linear(2, 2)), ["0"])
    {'0': 'Linear'}
    """
    meta = getattr(module, "meta", None)
    plan = meta.get("blockstitch_plan") if isinstance(meta, dict) else None
    steps = {s.name: s.kind for s in plan.steps} if plan is not None else {}
    return {r: steps.get(r) or type(module.get_submodule(r)).__name__ for r in rows}


def row_of(name: str, rows: Iterable[str]) -> str | None:
    """The row whose module holds module ``name`` (the longest row path that is ``name`` or an ancestor of it);
    None for work outside every row (the root's own forward).

    >>> row_of("layer1.0.conv1", ["layer1.0", "layer1.1"]), row_of("", ["fc"])
    ('layer1.0', None)
    """
    best = None
    for row in rows:
        if (name == row or name.startswith(row + ".")) and (best is None or len(row) > len(best)):
            best = row
    return best


def fold(per_module: Mapping[str, int], rows: Iterable[str]) -> dict[str, int]:
    """Sum figures counted per innermost module (FLOPs, bytes) into their rows.

    >>> fold({"layer1.0.conv1": 4, "layer1.0": 1, "": 2}, ["layer1.0"])
    {'layer1.0': 5}
    """
    rows = list(rows)
    out: dict[str, int] = dict.fromkeys(rows, 0)
    for name, value in per_module.items():
        row = row_of(name, rows)
        if row is not None:
            out[row] += value
    return out


def _kind_note(module: nn.Module) -> str:
    from ..stitch.wrappers import GatedResidual, LayoutBridge

    notes = []
    while isinstance(module, (GatedResidual, LayoutBridge)):
        notes.append("gated" if isinstance(module, GatedResidual) else f"bridged {module.layout}")
        module = module.block
    return f" ({', '.join(notes)})" if notes else ""


def edit_rows(model: nn.Module, report: StitchReport, rows: list[str],
              kinds: dict[str, str]) -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """Rows of a stitched network, named from its stitch report: an inserted or replacing block's row is its
    block kind (``ema``; ``ema (gated)`` when inserted as ``x + gate · block(x)``), a wrapped module says so
    (``Linear (wrapped: gated)``) and its gate — a parameter holder that never runs — joins its row, and a row
    holding a stitched block deeper down names it (``Bottleneck + cbam``).

    Returns (rows, kinds by row, extra modules whose parameters count in a row).
    """
    kinds, extras = dict(kinds), dict[str, list[str]]()
    for edit in report.edits:
        if edit.op == "wrap":
            row = row_of(edit.path, rows)
            if row is None:
                continue
            kinds[row] = f"{kinds[row]} (wrapped: {edit.kind})" if row == edit.path else \
                f"{kinds[row]} + {edit.kind} wrap"
            if edit.module != edit.path and edit.module in rows:  # the gate: counted with what it gates
                rows = [r for r in rows if r != edit.module]
                extras.setdefault(row, []).append(edit.module)
            continue
        if edit.op not in ("insert", "replace"):
            continue
        row = row_of(edit.module, rows)
        if row is None:
            continue
        if row == edit.module:
            note = _kind_note(model.get_submodule(edit.module))
            kinds[row] = f"{edit.kind}{note}" if edit.op == "insert" else f"{edit.kind}{note} (replaced)"
        else:
            added = f" + {edit.kind}" if edit.op == "insert" else f" + {edit.kind} (replaced)"
            kinds[row] += "" if added in kinds[row] else added
    return rows, kinds, extras
