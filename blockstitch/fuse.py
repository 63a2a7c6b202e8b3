"""Folding re-parameterisable blocks (RepVGG, DBB, RepConv, dilated re-param …) into the single module they are
equivalent to at inference, on a copy of the model.

The protocol: a module that can be folded offers ``fuse(self) -> nn.Module``, callable without arguments, which
returns the equivalent single module (usually one ``nn.Conv2d`` with bias, or a small ``conv → act``) computing
in eval mode what the module computes in eval mode — BatchNorms folded with their running statistics. It must
not change ``self``. A block that cannot be folded simply has no ``fuse``. Blocks of blockstitch's library
implement it; any module of the user's that follows the protocol is folded too.

>>> fused, report = fuse(model)            # model is left exactly as it was
>>> print(report)                           # every folded path, its class before and after, params saved
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from .errors import BlockstitchError
from .meta import real_copy, torch_state_guard

__all__ = ["fuse", "Fused", "FuseReport", "FusedModule"]


@dataclass
class FusedModule:
    """One folded module."""

    path: str
    before: str
    after: str
    params_before: int
    params_after: int


@dataclass
class FuseReport:
    """What :func:`fuse` folded, and (when given an input) the largest output difference it made."""

    fused: list[FusedModule] = field(default_factory=list)
    max_abs_diff: float | None = None

    @property
    def params_saved(self) -> int:
        """Parameters removed by folding."""
        return sum(f.params_before - f.params_after for f in self.fused)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"fused": [vars(f) for f in self.fused], "params_saved": self.params_saved,
                "max_abs_diff": self.max_abs_diff}

    def __str__(self) -> str:
        if not self.fused:
            return "fuse: nothing to fold (no module offers fuse())"
        lines = [f"fuse: {len(self.fused)} module(s) folded, {self.params_saved:,} parameters fewer"]
        lines += [f"  {f.path or '(root)':32s} {f.before} → {f.after} ({f.params_before:,} → {f.params_after:,})"
                  for f in self.fused]
        if self.max_abs_diff is not None:
            lines.append(f"  largest output difference in eval: {self.max_abs_diff:.3g}")
        return "\n".join(lines)


class Fused(NamedTuple):
    """``model, report = fuse(...)``."""

    model: nn.Module
    report: FuseReport


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _fold(module: nn.Module, path: str, report: FuseReport) -> nn.Module:
    """Fold ``module`` if it offers ``fuse()``, else fold its children in place; returns what replaces it."""
    fuse_fn = getattr(module, "fuse", None)
    if callable(fuse_fn):
        new = fuse_fn()
        if not isinstance(new, nn.Module):
            raise BlockstitchError(f"{path or 'the model'}: {type(module).__name__}.fuse() returned "
                                   f"{type(new).__name__}, not an nn.Module")
        report.fused.append(FusedModule(path, type(module).__name__, type(new).__name__, _count(module),
                                        _count(new)))
        return new.eval()
    for name, child in list(module.named_children()):
        new = _fold(child, f"{path}.{name}" if path else name, report)
        if new is not child:
            setattr(module, name, new)
    return module


def fuse(model: nn.Module, example: torch.Tensor | None = None) -> Fused:
    """A copy of ``model`` in eval mode with every module that offers ``fuse()`` replaced by what it returns
    (see the module docstring for the protocol); ``model`` itself is not touched. With ``example`` (an input
    batch), both are run in eval mode and the report states the largest absolute output difference.

    >>> fused, report = fuse(model, example=torch.randn(1, 3, 64, 64))
    >>> report.max_abs_diff < 1e-4
    True
    """
    fused = real_copy(model).eval()
    report = FuseReport()
    fused = _fold(fused, "", report)
    if example is not None:
        with torch_state_guard(), torch.no_grad():  # the reference is a copy: the model itself never runs
            a, b = real_copy(model).eval()(example), fused(example)
        report.max_abs_diff = float((a.float() - b.float()).abs().max()) if torch.is_tensor(a) else None
    return Fused(fused, report)
