"""Phases (a) and (b), cheapest first: every variant planned on meta tensors (params, MACs, every shape error
refused before any training), then timed against the baseline, paired and interleaved.

>>> plans = plan_variants(base, variants, (3, 32, 32))
>>> plans[1].params - plans[0].params
360
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..assemble import Located
from ..assemble.limits import path_text
from ..errors import SpecError
from ..spread import Ratio, Spread, paired_ratio
from .trial import build_variant
from .variants import Variant

__all__ = ["PlanRow", "Latency", "plan_variants", "time_variants"]


@dataclass
class PlanRow:
    """Phase (a) for one variant: its size and cost on meta tensors, or why it cannot be built."""

    variant: str
    params: int | None = None
    macs: int | None = None
    places: int = 0
    """Modules the edits touched (a glob may match several)."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Latency:
    """Phase (b) for one variant: forward time at the latency batch, and its ratio to the baseline paired by
    round (:func:`blockstitch.spread.paired_ratio`: the median of the per-round ratios, an order-statistic
    interval, "within noise" when it holds 1). Made by :meth:`of` from the samples it keeps."""

    variant: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    ci_low_ms: float
    ci_high_ms: float
    """The 95 % confidence interval of the median (order statistics: :meth:`blockstitch.spread.Spread.of`)."""
    ratio: float
    ratio_low: float
    ratio_high: float
    ratio_coverage: float
    """The interval's exact coverage (0.95 or a little more; less under six rounds)."""
    within_noise: bool
    rounds: int
    device: str
    batch: int
    samples_ms: list[float]
    """This variant's time per round, paired with the baseline's."""

    @classmethod
    def of(cls, variant: str, base_ms: list[float], samples_ms: list[float], device: str, batch: int) -> Latency:
        """The summary of ``samples_ms`` and its paired ratio to ``base_ms`` (round ``i`` of each paired).

        >>> Latency.of("eca", [1.0] * 8, [1.1] * 8, "cpu", 1).delta.text()
        '+10.0 % [+10.0, +10.0]'
        """
        own, ratio = Spread.of(samples_ms), paired_ratio(base_ms, samples_ms)
        return cls(variant, own.median, own.p10, own.p90, own.ci_low, own.ci_high, ratio.estimate, ratio.ci_low, ratio.ci_high,
                   ratio.coverage, ratio.within_noise, len(samples_ms), device, batch, list(samples_ms))

    @property
    def delta(self) -> Ratio:
        """The paired ratio to the baseline (what every table format writes)."""
        return Ratio(self.ratio, self.ratio_low, self.ratio_high, self.ratio_coverage, self.rounds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _loc(path: str | None) -> tuple[Any, ...]:
    if not path:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[A-Za-z_]\w*|\d+", path))


def _locate(err: SpecError, variant: Variant, located: Located | None) -> SpecError:
    """A stitch error, pointed at the variant's edit in the ablation file."""
    label = f"variant '{variant.name}'"
    err.message = f"{label}: {err.message}"
    if located is None or err.file is not None:
        err.args = (str(err),)
        return err
    inner = _loc(err.path)
    loc = (*variant.origin, *inner) if variant.origin[:1] == ("variants",) else variant.origin
    line, column = located.mark(loc)
    err.path = None
    return err.located(file=located.file, line=line, column=column, path=path_text(loc))


def plan_variants(base: Any, variants: list[Variant], input_shape: tuple[int, ...] | None,
                  located: Located | None = None, keep_going: bool = False) -> list[PlanRow]:
    """Every variant stitched on meta tensors (nothing allocated): params, MACs, and every shape error — raised,
    located in the ablation file, before anything trains; with ``keep_going`` a row holding the error instead."""
    from ..subject import NETWORK_KINDS, subject

    shared = subject(base, accept=NETWORK_KINDS, input_shape=input_shape)  # the base built on meta once
    rows = []
    for variant in variants:
        try:
            _, report = build_variant(shared, variant.edits, input_shape, "meta")
            rows.append(PlanRow(variant.name, report.params_after, report.macs_after, len(report.edits)))
        except SpecError as err:
            err = _locate(err, variant, located)
            if not keep_going or variant.is_baseline:
                raise err from None
            rows.append(PlanRow(variant.name, error=str(err).splitlines()[0]))
    return rows


def time_variants(base: Any, variants: list[Variant], input_shape: tuple[int, ...], device: str = "cpu",
                  batch: int = 1, rounds: int = 30, threads: int = 1) -> tuple[list[Latency], dict[str, str]]:
    """Forward latency of every variant (row 0 the baseline), timed in interleaved rounds with the bench harness
    (:func:`blockstitch.bench.timing.interleaved`) on ``threads`` torch threads (the trials' number); the ratio
    to the baseline is paired by round. A variant whose real forward fails is left out with its error (its
    trials will fail the same way and say so); returns ``(latencies, errors by variant)``."""
    import torch

    from ..bench.timing import interleaved
    from ..meta import keeps_torch_state

    errors: dict[str, str] = {}

    @keeps_torch_state
    def measure() -> tuple[list[Variant], list[list[float]]]:
        dev = torch.device(device)
        torch.manual_seed(0)
        x = torch.randn(batch, *input_shape, device=dev)
        fns: list[Callable[[], object]] = []
        kept: list[Variant] = []
        for variant in variants:
            try:
                model, _ = build_variant(base, variant.edits, input_shape, None)
                model = model.to(dev).eval()

                def forward(model: torch.nn.Module = model) -> object:
                    with torch.inference_mode():
                        return model(x)

                forward()
            except Exception as err:  # noqa: BLE001 — a variant that cannot run is reported, the rest are timed
                if variant.is_baseline:
                    raise
                errors[variant.name] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
                continue
            fns.append(forward)
            kept.append(variant)
        return kept, interleaved(fns, dev, rounds)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kept, samples = measure()
    finally:
        torch.set_num_threads(before)
    return [Latency.of(variant.name, samples[0], times, device, batch) for variant, times in zip(kept, samples)], errors
