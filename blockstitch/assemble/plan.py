"""The plan: every node's inputs, shapes, layout, parameters and MACs, known before a weight exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..blockspec import BlockSpec, Shape, TensorInfo
from ..errors import fmt_shape
from .spec import Origin

__all__ = ["Plan", "Step"]


@dataclass
class Step:
    """One module of the network-to-be: a node, or a layout bridge the assembler inserted."""

    name: str
    spec: BlockSpec
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    out: TensorInfo
    params: int
    macs: int
    origin: Origin | None = None
    bridge: bool = False
    meta_module: nn.Module | None = field(default=None, repr=False)
    taps: dict[str, TensorInfo] = field(default_factory=dict)
    """Named outputs (`enc.layer3`) of a multi-output node, in order; `out` is the last."""

    @property
    def kind(self) -> str:
        """The block kind."""
        return self.spec.kind

    def record(self) -> dict[str, Any]:
        """A plain dict (JSON-ready) of this step."""
        note = ""
        if self.bridge:
            note = f"bridge: {getattr(self.spec, 'pattern', '')}"
        elif self.taps:
            note = "outputs: " + ", ".join(f"{k} {fmt_shape(v.shape)}" for k, v in self.taps.items())
        elif self.out.layout == "b n c" and self.out.grid is not None:
            note = f"tokens on {self.out.grid[0]}×{self.out.grid[1]} grid" + (
                f" + {self.out.prefix} prefix" if self.out.prefix else "")
        return {"name": self.name, "kind": self.kind, "inputs": list(self.inputs),
                "in_shapes": [list(s) for s in self.in_shapes], "out_shape": list(self.out.shape),
                "layout": self.out.layout, "params": self.params, "macs": self.macs, "bridge": self.bridge,
                "note": note}


@dataclass
class Plan:
    """Every step in execution order, with the network's input and outputs."""

    name: str
    input: TensorInfo
    steps: list[Step]
    outputs: list[str]
    file: str | None = None
    baseline: str | None = None
    description: str = ""
    output_keys: list[str] | None = None
    """Keys of the dict the network returns (one per output), when its spec's `outputs:` is a mapping."""

    @property
    def batch(self) -> int:
        """Batch size the plan was made for."""
        return self.input.shape[0]

    @property
    def params(self) -> int:
        """Total parameters (each node's own; nodes share none)."""
        return sum(s.params for s in self.steps)

    @property
    def macs(self) -> int:
        """Total multiply-accumulates of one forward pass at this batch (FLOPs = 2 × MACs)."""
        return sum(s.macs for s in self.steps)

    @property
    def bridges(self) -> list[Step]:
        """The layout bridges the assembler inserted."""
        return [s for s in self.steps if s.bridge]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def output_shapes(self) -> list[Shape]:
        """Shapes the network returns, in `outputs` order."""
        shapes = {s.name: s.out.shape for s in self.steps}
        return [shapes[o] for o in self.outputs]

    def records(self) -> list[dict[str, Any]]:
        """Plain dicts of every step (what the CLI renders)."""
        return [s.record() for s in self.steps]

    def delta(self, base: Plan) -> dict[str, Any]:
        """This plan against ``base``: Δparams and ΔMACs, absolute and in percent of the base.

        >>> seresnet50.delta(resnet50)["params"]   # two plans
        2532008
        """
        return {"baseline": base.name, "params": self.params - base.params, "macs": self.macs - base.macs,
                "params_pct": 100.0 * (self.params - base.params) / max(base.params, 1),
                "macs_pct": 100.0 * (self.macs - base.macs) / max(base.macs, 1)}

    def summary(self) -> str:
        """One line: ``resnet50: 1×3×224×224 → 1×1000, 25,557,032 params, 4.09 GMACs``."""
        outs = ", ".join(fmt_shape(s) for s in self.output_shapes())
        return (f"{self.name}: {fmt_shape(self.input.shape)} → {outs}, {self.params:,} params, "
                f"{self.macs / 1e9:.3f} GMACs")
