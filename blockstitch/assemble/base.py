"""A spec that scales another: `base: efficientnet_b0` plus the top-level fields it changes.

EfficientNet-B1…B7 are B0 with other `width`, `depth`, `input` and `defaults` (dropout, BatchNorm epsilon):
writing them as `base:` specs keeps one copy of the architecture. The derived spec's top-level fields replace
the base's, except `defaults`, which are merged key by key. Nodes come from the base unchanged; a problem
found in them after the change is reported at the derived file's `base:` line, with the node's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from .source import Located, load_file
from .zoo import find_spec

__all__ = ["with_base", "MAX_BASE_DEPTH"]

MAX_BASE_DEPTH = 4
"""How many `base:` links one spec may follow."""


def _base_path(name: object, located: Located) -> Path:
    if not isinstance(name, str) or not name:
        raise located.error("'base' must be a zoo name or a spec file next to this one", ("base",), found=repr(name))
    if located.file is not None:
        sibling = Path(located.file).parent / name
        if sibling.suffix in (".yaml", ".yml", ".json") and sibling.is_file():
            return sibling
    try:
        return find_spec(name)
    except SpecError as err:
        raise located.error(err.message, ("base",), hint=err.hint) from None


def with_base(located: Located, depth: int = 0) -> Located:
    """The spec with its `base:` (recursively) merged in; a spec without `base:` is returned as it is.

    >>> with_base(load_file("specs/efficientnet_b3.yaml")).data["width"]
    1.2
    """
    data = located.data
    if not isinstance(data, dict) or "base" not in data:
        return located
    if depth >= MAX_BASE_DEPTH:
        raise located.error(f"more than {MAX_BASE_DEPTH} `base:` links (or a cycle)", ("base",))
    base = with_base(load_file(_base_path(data["base"], located)), depth + 1)
    if not isinstance(base.data, dict):
        raise located.error("the base is not a network spec (a mapping)", ("base",))
    merged = dict(base.data)
    for key, value in data.items():
        if key == "base":
            continue
        if key == "defaults" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    marks: dict[Any, Any] = dict(located.marks)  # (None, None) where the base has no mark either
    for key in merged:  # keys that came from the base point at the `base:` line of this file
        marks.setdefault((key,), located.marks.get(("base",), (None, None)))
    return Located(merged, located.file, marks)
