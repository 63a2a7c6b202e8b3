"""The table papers want: a module stitched after each named node of a network, against the baseline —
Δparams, ΔMACs and Δ CPU latency per insertion point.

Δlatency is a paired ratio with its 95 % interval (:func:`blockstitch.spread.paired_ratio`): the baseline and
every stitched network are timed in the same rounds by a paired timer (the CLI hands in
:func:`blockstitch.bench.timing.interleaved`; check cannot import bench, a sibling tool), so round ``i`` of each
shares that round's clock, caches and load. A second copy of the baseline (the same weights, built again) is
timed too: two copies of one network read a few per cent apart on a quiet CPU (where their weights sit in memory),
so a row reads "within noise" when its interval meets the hull of 1 and that copy's interval (``noise_floor``). Without a timer
nothing runs on real tensors: the networks are built on meta and the latency columns say "not timed".

>>> report = stitch_report(factory, "resnet50", ["layer1"], timer=lambda fns, n: interleaved(fns, cpu, n))
>>> report.rows[0].latency.text()
'+3.1 % [+0.4, +6.2]'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..meta import keeps_torch_state
from ..networks import build
from ..profile import profile
from ..progress import ProgressLike, track
from ..spread import Ratio, Spread, paired_ratio, warnings_for
from ..stitch.points import called, record_shapes, run_beside
from ..subject import NETWORK_KINDS, Subject, subject
from .targets import Factory

__all__ = ["StitchRow", "StitchTable", "PairedTimer", "stitch_report", "NOT_TIMED"]

PairedTimer = Callable[[list[Callable[[], object]], int], list[list[float]]]
"""``timer(fns, rounds)`` → one list of ``rounds`` times (ms) per callable, sample ``r`` of each paired."""

NOT_TIMED = "not timed"
"""What the latency cells say when no timing ran (``--no-latency``)."""


_RATIO_KEYS = [f"latency_ratio_{f.name}" for f in fields(Ratio)] + ["latency_ratio_within_noise"]


@dataclass
class StitchRow:
    """One insertion point."""

    at: str
    shape: tuple[int, ...]
    params: int
    macs: int
    params_pct: float
    macs_pct: float
    latency: Ratio | None = None
    """Stitched / baseline forward time, the median of the per-round ratios with its interval; None: not timed."""
    samples_ms: list[float] | None = None
    """The stitched network's time per round, paired with :attr:`StitchTable.base_samples_ms`."""

    @property
    def latency_text(self) -> str:
        """``'+3.1 % [+0.4, +6.2]'``, ``'…, within noise'`` or ``'not timed'``."""
        return self.latency.text() if self.latency is not None else NOT_TIMED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the sizes, the ratio's fields prefixed ``latency_ratio_`` (null when not timed), the
        change in percent, the cell's text and the raw samples."""
        ratio = self.latency.as_dict("latency_ratio_") if self.latency is not None else dict.fromkeys(_RATIO_KEYS)
        return {"at": self.at, "shape": list(self.shape), "params": self.params, "macs": self.macs,
                "params_pct": self.params_pct, "macs_pct": self.macs_pct, **ratio,
                "latency_pct": self.latency.pct if self.latency is not None else None,
                "latency": self.latency_text, "samples_ms": self.samples_ms}


@dataclass
class StitchTable:
    """The baseline and one row per insertion point."""

    into: str
    params: int
    macs: int
    rows: list[StitchRow]
    rounds: int = 0
    """Paired rounds timed (0: not timed)."""
    base_samples_ms: list[float] | None = None
    """The baseline's time per round (CPU, batch 1)."""
    warnings: list[str] = field(default_factory=list)
    threads: int | None = None
    """Torch's CPU threads while timing (None: not timed)."""
    floor: Ratio | None = None
    """A second copy of the baseline against the baseline (the same weights, built again): what "no difference"
    reads on this machine. Each row is within noise when its interval meets the hull of 1 and this interval."""
    twin_samples_ms: list[float] | None = None
    """The baseline copy's time per round (paired like every row's)."""

    @property
    def base_latency(self) -> Spread | None:
        """The baseline's forward time: median, p10/p90 and the median's interval (None: not timed)."""
        return Spread.of(self.base_samples_ms) if self.base_samples_ms else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (latency fields null when not timed)."""
        spread = self.base_latency
        base = {"params": self.params, "macs": self.macs, "latency_ms": spread.median if spread else None,
                "latency_ms_ci_low": spread.ci_low if spread else None,
                "latency_ms_ci_high": spread.ci_high if spread else None, "samples_ms": self.base_samples_ms}
        floor: dict[str, Any] | None = None
        if self.floor is not None:
            floor = {**self.floor.as_dict(), "text": self.floor.text(), "samples_ms": self.twin_samples_ms}
        return {"into": self.into, "baseline": base, "noise_floor": floor, "rounds": self.rounds,
                "device": "cpu" if spread else None,
                "batch": 1, "threads": self.threads, "rows": [r.to_dict() for r in self.rows],
                "warnings": self.warnings}


@keeps_torch_state
def stitch_report(factory: Factory, into: Subject | str, at: Sequence[str], input_shape: Sequence[int] | None = None,
                  rounds: int = 30, timer: PairedTimer | None = None, progress: ProgressLike = None) -> StitchTable:
    """Insert the module after each node in ``at`` (channels bound from the plan), one point at a time.

    With a ``timer`` the baseline and every stitched network run CPU forwards at batch 1 in ``rounds`` paired
    rounds, and each row's Δlatency is :func:`blockstitch.spread.paired_ratio` of its samples against the
    baseline's. Without one (or with ``rounds=0``) nothing runs on real tensors: sizes come from meta tensors.
    ``progress`` hears of one step per insertion point (:mod:`blockstitch.progress`).
    """
    timed = timer is not None and rounds > 0
    device = "cpu" if timed else "meta"
    network = subject(into, accept=NETWORK_KINDS)
    label = into if isinstance(into, str) else network.name
    base_plan = network.plan(input_shape)
    shape = base_plan.input.shape
    torch.manual_seed(0)
    base = build(base_plan, device=device).eval()
    base_prof = profile(base_plan)
    rec = record_shapes(base, shape)
    rows, models = [], []
    for point in track(progress, at, lambda p: f"stitching after {p}"):
        model = build(base_plan, device=device).eval()
        if timed:
            model.load_state_dict(base.state_dict())
        try:
            target = called(rec, point, "after")
        except SpecError as err:
            raise SpecError(f"--at '{point}': {err.message}") from None
        if target not in rec.shapes:
            raise SpecError(f"--at '{point}' is not a node of {label}",
                            hint="nodes: " + ", ".join(s.name for s in base_plan.steps[:12]) + ", …")
        out_shape = rec.shapes[target][1]
        layout = {4: "b c h w", 3: "b n c", 2: "b c"}.get(len(out_shape), "b c h w")
        channels = out_shape[1] if layout == "b c h w" else out_shape[-1]
        block = factory(out_shape, layout, channels)
        run_beside(model, point, target, block.to(device).eval(), "stitched")
        prof = profile(model, shape[1:])
        params, macs = prof.params - base_prof.params, prof.macs - base_prof.macs
        rows.append(StitchRow(point, tuple(out_shape), params, macs, 100 * params / base_prof.params,
                              100 * macs / max(base_prof.macs, 1)))
        models.append(model)
    report = StitchTable(label, base_prof.params, base_prof.macs, rows)
    if timer is not None and timed and rows:
        x = torch.randn(*shape)  # one input for all: the networks differ only by the stitched block
        twin = build(base_plan, device=device).eval()  # the noise floor: the baseline again, as a separate copy
        twin.load_state_dict(base.state_dict())
        samples = timer([_forward(m, x) for m in [base, *models, twin]], rounds)
        report.rounds, report.base_samples_ms, report.threads = rounds, samples[0], torch.get_num_threads()
        report.twin_samples_ms, floor = samples[-1], paired_ratio(samples[0], samples[-1])
        report.floor = floor
        for row, own in zip(rows, samples[1:-1], strict=True):
            row.samples_ms, row.latency = own, paired_ratio(samples[0], own).against(floor)
        report.warnings = warnings_for(Spread.of(samples[0]), f"the baseline {label}'s forward",
                                       own=torch.get_num_threads())
    return report


def _forward(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """One forward of ``model`` on ``x``, without autograd."""
    def forward() -> object:
        with torch.inference_mode():
            return model(x)

    return forward
