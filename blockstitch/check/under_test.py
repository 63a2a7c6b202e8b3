"""What the worker holds: the module under test (an instance, or a factory that builds it for a layout and a
channel count) and the probes' caches, so probes share construction.

The caller's object is never run: in a forked worker the process is a copy, in-process :meth:`UnderTest.copied`
is used (see ``worker.py``).

>>> held = UnderTest(factory=lambda shape, layout, c: torch.nn.Conv2d(c, c, 1))
>>> held.module((2, 8, 4, 4), "b c h w", 8).in_channels
8
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from .report import first_line

if TYPE_CHECKING:
    from .targets import Factory

__all__ = ["UnderTest"]


@dataclass
class UnderTest:
    """The subject of the probes: ``instance`` (used as it is) or ``factory`` (built once per layout and width),
    plus what the probes remember between items."""

    instance: nn.Module | None = None
    factory: Factory | None = None
    built: dict[tuple[str, int], nn.Module | Exception] = field(default_factory=dict)
    """(layout, channels) → the module built there, or why construction failed."""
    copies: dict[tuple[str, int], nn.Module] = field(default_factory=dict)
    """(purpose, channels) → a copy made once per purpose (training changes statistics, gradients fill .grad)."""
    slow_at: float = math.inf
    """Inputs with more values than this go to meta tensors (a real run there was slow)."""
    real_runs: int = 0

    def module(self, shape: tuple[int, ...], layout: str, channels: int) -> nn.Module:
        """The module for this layout and channel count (built once each; an instance is used as it is). A
        constructor that fails at this width raises ``RuntimeError("construction failed: …")`` every time."""
        if self.instance is not None:
            return self.instance
        if self.factory is None:
            raise TypeError("nothing under test: an UnderTest holds an instance or a factory")
        key = (layout, channels)
        if key not in self.built:
            torch.manual_seed(0)
            try:
                self.built[key] = self.factory(tuple(shape), layout, channels)
            except Exception as err:  # noqa: BLE001 — a constructor that fails at this width is a finding
                self.built[key] = RuntimeError(f"construction failed: {first_line(err)}")
        made = self.built[key]
        if isinstance(made, Exception):
            raise made
        return made

    def copy(self, purpose: str, channels: int, module: nn.Module) -> nn.Module:
        """A copy of ``module`` made once per purpose and width."""
        from ..meta import real_copy

        key = (purpose, channels)
        if key not in self.copies:
            self.copies[key] = real_copy(module)
        return self.copies[key]

    def copied(self) -> UnderTest:
        """A copy to run in-process: the instance through ``meta.real_copy`` (whose hooks are rebound to the
        copy), the factory as it is (a function), empty caches."""
        from ..meta import real_copy

        return UnderTest(instance=real_copy(self.instance) if self.instance is not None else None,
                         factory=copy.deepcopy(self.factory))
