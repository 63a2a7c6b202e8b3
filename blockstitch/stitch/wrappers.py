"""How a stitched block runs without renaming anything: it is registered beside its target and called from a
forward (pre-)hook, so every untouched parameter keeps its exact state_dict name. Hooks are plain PyTorch:
`torch.compile(fullgraph=True)`, `torch.export` and `copy.deepcopy` all handle them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["RunAfter", "RunBefore", "ResidualAround", "GatedResidual", "Gate", "LayoutBridge"]


class RunAfter:
    """Forward hook: the target's output goes through ``block``."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
        return self.block(out)


class RunBefore:
    """Forward pre-hook: the target's first input goes through ``block`` first."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self.block(args[0]), *args[1:])


class Gate(nn.Module):
    """A learned scalar gate; zero-initialised when the stitch must start as the identity."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.full((1,), float(value)))


class ResidualAround:
    """Forward hook for `wrap`: ``x + gate · target(x)`` (gate 1 and fixed when ``gate`` is None)."""

    def __init__(self, gate: Gate | None) -> None:
        self.gate = gate

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
        return args[0] + (out if self.gate is None else self.gate.gate * out)


class GatedResidual(nn.Module):
    """``x + gate · block(x)`` with the gate at zero: inserted this way, a block changes nothing at first."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate * self.block(x)


class LayoutBridge(nn.Module):
    """A block that takes another layout, run on a feature map: ``b c h w`` → its layout (tokens ``b (h w) c``
    or channels-last ``b h w c``) → the block → back to ``b c h w``, with h and w read from the input."""

    def __init__(self, block: nn.Module, layout: str) -> None:
        super().__init__()
        self.block = block
        self.layout = layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.layout == "b n c":
            y = self.block(x.flatten(2).transpose(1, 2))  # b c h w -> b (h w) c
            return y.transpose(1, 2).reshape(b, y.shape[-1], h, w)  # b (h w) c -> b c h w
        y = self.block(x.permute(0, 2, 3, 1))  # b c h w -> b h w c
        return y.permute(0, 3, 1, 2)  # b h w c -> b c h w

    def extra_repr(self) -> str:
        return f"b c h w <-> {self.layout}"
