"""blockstitch: compose PyTorch networks from blocks, checked shape by shape before a weight exists.

>>> import blockstitch as bs
>>> bs.plan("resnet18").params
11689512

Importing the package is cheap: each public name is imported from its module on first use (PEP 562), so the
command line answers ``--help`` without importing torch, and ``import blockstitch`` costs no more than what you
use. ``bs.bench``, ``bs.fuse``, ``bs.profile`` and ``bs.stitch`` are the functions even though subpackages of
the same names exist (importing ``blockstitch.profile.report`` does not turn ``bs.profile`` into a module).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # name → the module that defines it (one line per public name; add yours here and to __all__)
    "build": ".api", "load_spec": ".api", "plan": ".api",
    "Plan": ".assemble",
    "BenchResult": ".bench", "bench": ".bench",
    "BlockSpec": ".blockspec",
    "CheckReport": ".check", "check_module": ".check",
    "BlockstitchError": ".errors", "RegistryError": ".errors", "ShapeError": ".errors", "SpecError": ".errors",
    "Fused": ".fuse", "FuseReport": ".fuse", "fuse": ".fuse",
    "NodeProfile": ".profile", "Profile": ".profile", "profile": ".profile",
    "block_kinds": ".registry", "get_block": ".registry", "register_block": ".registry",
    "Stitched": ".stitch", "StitchReport": ".stitch", "stitch": ".stitch", "load": ".stitch.archive",
    "TransferError": ".transfer", "TransferReport": ".transfer", "transfer_weights": ".transfer",
    "graph": ".graph", "GraphRecord": ".graph",
    "export": ".export", "ExportReport": ".export", "ExportError": ".export",
    "to_ultralytics": ".yolo",
    "ablate": ".ablate", "AblationResult": ".ablate",
}

__all__ = ["BenchResult", "bench", "CheckReport", "check_module", "StitchReport", "Stitched", "stitch", "load", "NodeProfile",
           "Profile", "profile", "Plan", "build", "load_spec", "plan", "BlockSpec", "BlockstitchError",
           "RegistryError", "ShapeError", "SpecError", "block_kinds", "get_block", "register_block", "TransferError",
           "TransferReport", "transfer_weights", "fuse", "Fused", "FuseReport", "graph", "GraphRecord", "export",
           "ExportReport", "ExportError", "to_ultralytics", "ablate", "AblationResult", "__version__"]

if TYPE_CHECKING:  # what type checkers and editors see; at run time the names arrive through __getattr__
    from .api import build, load_spec, plan
    from .assemble import Plan
    from .bench import BenchResult, bench
    from .blockspec import BlockSpec
    from .check import CheckReport, check_module
    from .errors import BlockstitchError, RegistryError, ShapeError, SpecError
    from .fuse import Fused, FuseReport, fuse
    from .profile import NodeProfile, Profile, profile
    from .registry import block_kinds, get_block, register_block
    from .stitch import Stitched, StitchReport, stitch
    from .transfer import TransferError, TransferReport, transfer_weights
    from .graph import GraphRecord, graph
    from .export import ExportError, ExportReport, export
    from .yolo import to_ultralytics
    from .ablate import AblationResult, ablate

_SHADOWED = tuple(name for name, module in _EXPORTS.items() if module == f".{name}")
"""Functions named like the subpackage that defines them (``profile`` in ``blockstitch.profile``)."""
_assigned: dict[str, Any] = {}  # what a user (or monkeypatch) assigned to a shadowed name


def _export(name: str) -> Any:
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __getattr__(name: str) -> Any:
    """Import a public name (or a subpackage, ``bs.check``) on first use."""
    if name in _EXPORTS:
        value = _export(name)
        globals()[name] = value  # later lookups skip this function
        return value
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module type: a shadowed name always gives the function. When the import system loads the
    subpackage ``blockstitch.profile`` it records it as the attribute ``profile`` of this package; that record is
    dropped (the subpackage stays in ``sys.modules``), while anything else assigned to the name is kept."""


def _shadowed_property(name: str) -> property:
    def get(_: types.ModuleType) -> Any:
        return _assigned[name] if name in _assigned else _export(name)

    def set_(_: types.ModuleType, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return  # the import system recording the subpackage
        _assigned[name] = value

    def delete(_: types.ModuleType) -> None:
        _assigned.pop(name, None)

    return property(get, set_, delete, doc=f"blockstitch.{name}, the function")


for _name in _SHADOWED:
    setattr(_Package, _name, _shadowed_property(_name))
sys.modules[__name__].__class__ = _Package
