"""Variants: row 0 is always the baseline (no edits), then the file's named edit sets, then its grid's product.

>>> [v.name for v in expand(spec)]
['baseline', 'cbam@layer*', 'eca@layer*', 'cbam@layer4', 'eca@layer4']
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..assemble import Located
from ..errors import SpecError
from .file import MAX_VARIANTS, AblationFile, GridSpec

__all__ = ["Variant", "expand", "BASELINE"]

BASELINE = "baseline"


@dataclass(frozen=True)
class Variant:
    """One row of the table: a name and its edits (``{"insert": [...], "replace": [...], ...}``)."""

    name: str
    edits: dict[str, list[Any]] = field(default_factory=dict)
    index: int = 0
    """Where it came from: its place in ``variants`` (or in the grid's product, after them) — for messages."""
    origin: tuple[Any, ...] = ()
    """Its path in the file (``("variants", 2)``, ``("grid",)``), for locating its errors."""

    @property
    def is_baseline(self) -> bool:
        """True for row 0."""
        return not self.edits


def _block_name(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, type):
        return block.__name__
    kind = block.get("kind") if isinstance(block, dict) else None
    return kind.__name__ if isinstance(kind, type) else str(kind)


def _grid(grid: GridSpec) -> list[Variant]:
    anchor = "after" if grid.after is not None else "before" if grid.before is not None else "path"
    places: list[str] = getattr(grid, anchor)
    inits: list[bool | None] = list(grid.identity_init) if grid.identity_init is not None else [None]
    out: list[Variant] = []
    for block, place, init in itertools.product(grid.block, places, inits):
        mapping = {"kind": block} if isinstance(block, str) else block
        edit: dict[str, Any] = {anchor: place, "block": mapping}
        name = f"{_block_name(block)}{'@' if anchor != 'before' else '<'}{place}"
        if anchor == "path":
            name = f"{_block_name(block)}={place}"
        if init is not None:
            edit["identity_init"] = init
            name += "+id" if init else ""
        out.append(Variant(name, {"replace" if anchor == "path" else "insert": [edit]}, len(out), ("grid",)))
    return out


def expand(spec: AblationFile, located: Located | None = None) -> list[Variant]:
    """Every row: the baseline, the named variants, the grid's product; names must be unique.

    >>> expand(spec)[0]
    Variant(name='baseline', edits={}, index=0, origin=())
    """
    rows = [Variant(BASELINE)]
    for i, named in enumerate(spec.variants):
        rows.append(Variant(named.name, named.edits(), i, ("variants", i)))
    if spec.grid is not None:
        rows += _grid(spec.grid)
    if len(rows) - 1 > MAX_VARIANTS:
        raise SpecError(f"the ablation asks for {len(rows) - 1:,} variants (at most {MAX_VARIANTS})",
                        hint="split it into several files")
    seen: dict[str, Variant] = {}
    for v in rows:
        if v.name in seen:
            message, hint = f"two variants are named '{v.name}'", "give each variant its own name"
            if located is not None:
                raise located.error(message, v.origin, hint=hint)
            raise SpecError(message, hint=hint)
        seen[v.name] = v
    return rows
