"""The check-module truth corpus: third-party modules and planted defects, each with how to build it.

An :class:`Entry` names the class, its constructor arguments and — independently of blockstitch's own
inference — which constructor parameters take the channel count, so the test can build it at any width.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["Entry"]


@dataclass(frozen=True)
class Entry:
    """One module of the corpus: ``where`` is ``package.module:Class``."""

    where: str
    ch: str | None = None
    """The constructor parameter that takes the input channels (None: the width is fixed by ``args``)."""
    out: tuple[str, ...] = ()
    """Constructor parameters that must equal the input channels too (a shape-keeping build)."""
    args: dict[str, Any] = field(default_factory=dict)
    layout: str = "b c h w"
    c: int = 16
    keeps: bool = True
    """The output has the input's shape (checked against the contract ``layout → layout``)."""

    @property
    def name(self) -> str:
        """``module:Class`` without the package prefix."""
        return self.where.split(".")[-1]

    def cls(self) -> type[nn.Module]:
        """The class (imported here: the corpus is the user's explicit choice)."""
        module, _, name = self.where.partition(":")
        return getattr(importlib.import_module(module), name)

    def build(self, channels: int | None = None) -> nn.Module:
        """The module at ``channels`` (default ``c``), built by the corpus's own knowledge of its signature."""
        c = self.c if channels is None else channels
        kwargs = dict(self.args)
        if self.ch is not None:
            kwargs[self.ch] = c
            kwargs.update({name: c for name in self.out})
        return self.cls()(**kwargs)
