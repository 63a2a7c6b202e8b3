"""What the generated block index holds: every built-in kind → its family module and its catalogue entry.

The index (``blocks/index.json``, written by ``python -m blockstitch.regenerate``; see
:mod:`blockstitch.generated`) lets the registry import only the family a spec needs and ``blockstitch blocks``
list every block without importing one.
"""

from __future__ import annotations

from typing import Any

from ..catalogue import entry_of
from ..registry import block_classes
from . import load_all

__all__ = ["build_index"]


def build_index() -> dict[str, dict[str, Any]]:
    """Import every built-in family and describe each built-in kind (plugins are left out).

    >>> build_index()["conv"]["module"]
    'blockstitch.blocks.conv'
    """
    load_all()
    kinds = {}
    for cls in block_classes():
        if cls.__module__.startswith(f"{__package__}."):
            entry = entry_of(cls)
            kinds[entry.kind] = {"module": cls.__module__, "entry": entry.to_dict()}
    return kinds
