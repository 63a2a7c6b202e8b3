"""The table papers want: a module stitched after each named node of a network, against the baseline —
Δparams, ΔMACs and Δ CPU latency per insertion point."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SpecError
from ..networks import build
from ..profile import profile
from ..progress import ProgressLike, track
from ..stitch.points import called, record_shapes, run_beside
from ..subject import NETWORK_KINDS, Subject, subject
from .targets import Factory

__all__ = ["StitchRow", "stitch_report"]


@dataclass
class StitchRow:
    """One insertion point."""

    at: str
    shape: tuple[int, ...]
    params: int
    macs: int
    latency_ms: float
    params_pct: float
    macs_pct: float
    latency_pct: float


def _paired(base: nn.Module, model: nn.Module, x: torch.Tensor, reps: int) -> tuple[float, float]:
    """(median base ms, median of paired differences ms), base and stitched run back to back in ABBA order."""
    def once(m: nn.Module) -> float:
        t0 = time.perf_counter()
        m(x)
        return time.perf_counter() - t0

    with torch.inference_mode():
        once(base), once(model)
        pairs = []
        for rep in range(reps):
            if rep % 2:
                t_model, t_base = once(model), once(base)
            else:
                t_base, t_model = once(base), once(model)
            pairs.append((t_base, t_model - t_base))
    return statistics.median(p[0] for p in pairs) * 1e3, statistics.median(p[1] for p in pairs) * 1e3


def stitch_report(factory: Factory, into: Subject | str, at: Sequence[str], input_shape: Sequence[int] | None = None,
                  reps: int = 5, progress: ProgressLike = None) -> tuple[dict[str, float], list[StitchRow]]:
    """Insert the module after each node in ``at`` (channels bound from the plan), one point at a time.

    Returns the baseline (params, macs, latency_ms) and one row per point. Δlatency is the median of ``reps``
    paired differences (stitched minus baseline, run back to back in ABBA order) of CPU forwards at batch 1.
    ``progress`` hears of one step per insertion point (:mod:`blockstitch.progress`).
    """
    network = subject(into, accept=NETWORK_KINDS)
    base_plan = network.plan(input_shape)
    shape = base_plan.input.shape
    torch.manual_seed(0)
    base = build(base_plan).eval()
    base_prof = profile(base_plan)
    rec = record_shapes(base, shape)
    x = torch.randn(shape)
    rows = []
    base_times: list[float] = []
    for point in track(progress, at, lambda p: f"stitching after {p}"):
        model = build(base_plan).eval()
        model.load_state_dict(base.state_dict())
        try:
            target = called(rec, point, "after")
        except SpecError as err:
            raise SpecError(f"--at '{point}': {err.message}") from None
        if target not in rec.shapes:
            raise SpecError(f"--at '{point}' is not a node of {into if isinstance(into, str) else network.name}",
                            hint="nodes: " + ", ".join(s.name for s in base_plan.steps[:12]) + ", …")
        out_shape = rec.shapes[target][1]
        layout = {4: "b c h w", 3: "b n c", 2: "b c"}.get(len(out_shape), "b c h w")
        channels = out_shape[1] if layout == "b c h w" else out_shape[-1]
        block = factory(out_shape, layout, channels)
        run_beside(model, point, target, block, "stitched")
        prof = profile(model, shape[1:])
        base_ms, delta_ms = _paired(base, model, x, reps)
        base_times.append(base_ms)
        rows.append(StitchRow(point, out_shape, prof.params - base_prof.params, prof.macs - base_prof.macs, delta_ms,
                              0.0, 0.0, 0.0))
    base_ms = statistics.median(base_times) if base_times else 0.0
    for row in rows:
        row.params_pct = 100 * row.params / base_prof.params
        row.macs_pct = 100 * row.macs / max(base_prof.macs, 1)
        row.latency_pct = 100 * row.latency_ms / base_ms if base_ms else 0.0
    return {"params": base_prof.params, "macs": base_prof.macs, "latency_ms": base_ms}, rows
