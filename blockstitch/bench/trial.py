"""One combination of a sweep measured, and the per-block times: the same functions run in the driver (the
local backend) and in a Ray task (:mod:`blockstitch.bench.sweep_ray`), so both write the same rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import BenchResult, bench, bench_blocks

if TYPE_CHECKING:
    from .sweep import SweepSpec

__all__ = ["measure", "per_block_times"]


def measure(combo: dict[str, Any], spec: SweepSpec, runner: Callable[..., BenchResult] = bench) -> dict[str, Any]:
    """One combination measured: the result row as written to the JSONL file (its error instead, if it failed).
    The same function runs in the driver (local) and in a Ray task (``--backend ray``).

    >>> measure(next(_grid(spec)), spec)["median_ms"]  # doctest: +SKIP
    1.84
    """
    opts = combo["options"]
    try:
        result = runner(combo["target"], combo["input_shape_requested"], batch=combo["batch"],
                        device=combo["device"], dtype=combo["dtype"], amp=opts["amp"],
                        channels_last=opts["channels_last"], compile=opts["compile"],
                        cuda_graphs=opts["cuda_graphs"], mode=combo["mode"], budget_s=spec.budget_s,
                        args=spec.args).to_dict()
    except Exception as err:  # noqa: BLE001 — one bad entry must not lose the sweep
        result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    # the combination's own fields win: they are what a resumed sweep recognises as done
    return {**result, **combo}


def per_block_times(spec: SweepSpec) -> dict[str, Any]:
    """Every node of each spec target timed alone (at the first batch/input/dtype), for the per-block plot."""
    per = {}
    for target in spec.targets:
        try:
            per[target] = [b.to_dict() for b in bench_blocks(target, spec.input[0], spec.batch[0], spec.device,
                                                         spec.dtype[0], budget_s=min(spec.budget_s, 0.5))]
        except Exception as err:  # noqa: BLE001 — not every target is a spec
            per[target] = [{"error": str(err).splitlines()[0]}]
    return per
