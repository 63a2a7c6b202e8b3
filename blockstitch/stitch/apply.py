"""Applying edits to any ``nn.Module``: bind every edit at every matched path against the recorded shapes (all
shapes are checked before any module is built), then apply them all, in the order of :data:`EDIT_KINDS`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from ..errors import SpecError, path_text
from .edits import EDIT_KINDS, Bound, Edit, EditRecord
from .paths import match_paths, nearest_paths
from .points import Recording

__all__ = ["bind_edits", "apply_edits"]


def bind_edits(model: nn.Module, rec: Recording, edits: Mapping[str, Sequence[Edit]]) -> list[Bound]:
    """Every edit bound at every module its glob matches (each glob is matched before anything is bound).

    >>> bound = bind_edits(model, record_shapes(model, (1, 3, 224, 224)), parse_edits({"wrap": [{"path": "fc"}]}))
    """
    paths = [n for n, _ in model.named_modules() if n]
    matched = []
    for op in EDIT_KINDS:
        for i, edit in enumerate(edits.get(op, ())):
            pattern, where = edit.glob(), (op, i)
            found = match_paths(pattern, paths)
            if not found:
                raise SpecError(f"'{pattern}' matches no module of the base network", path=path_text(where),
                                hint="nearest real paths: " + ", ".join(nearest_paths(pattern, paths)))
            matched.append((edit, where, found))
    return [edit.bind(rec, path, where) for edit, where, found in matched for path in found]


def apply_edits(model: nn.Module, rec: Recording, edits: Mapping[str, Sequence[Edit]]) -> list[EditRecord]:
    """Apply the edits to ``model`` in place: bind all (shapes only), then apply all; one record per path."""
    bound = bind_edits(model, rec, edits)
    like = next(iter(model.parameters()), None)
    return [b.apply(model, like) for b in bound]
