"""Spec → resolved nodes → wiring → plan (meta tensors) → ``nn.Module``.

Names are imported from their modules on first use, so the torch-free parts (``source``, ``zoo``, ``limits``)
can be imported without the planner and the builder, which need torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "build_module": ".builder", "build_within_limits": ".builder", "Plan": ".plan", "Step": ".plan", "make_plan": ".planner",
    "Located": ".source", "load_file": ".source", "load_text": ".source",
    "Network": ".spec", "NetworkSpec": ".spec", "Node": ".spec", "resolve": ".spec",
    "find_spec": ".zoo", "specs_dir": ".zoo", "zoo_names": ".zoo",
}

__all__ = ["Located", "Network", "NetworkSpec", "Node", "Plan", "Step", "build_module", "build_within_limits",
           "find_spec", "load_file", "load_text", "make_plan", "resolve", "specs_dir", "zoo_names"]

if TYPE_CHECKING:
    from .builder import build_module, build_within_limits
    from .plan import Plan, Step
    from .planner import make_plan
    from .source import Located, load_file, load_text
    from .spec import Network, NetworkSpec, Node, resolve
    from .zoo import find_spec, specs_dir, zoo_names


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
