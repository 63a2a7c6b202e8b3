"""The sweeps: which sizes (and channel counts) a module runs at, probed in the worker, and the rule behind them.

Squares 1…24 densely, then larger ones; for tokens n = 1…24 and common token counts. After the squares, a
few non-square sizes chosen from what worked tell a per-axis rule from square-only, and a rule on the sides
from one on the area (8×8 alone works: do 4×16 and 2×32, of the same area, work too?). Outputs with NaN/Inf at
some sizes only (a variance over one pixel) count as failing there, so the size rule says where the outputs
are finite; NaN/Inf everywhere stays the finite-outputs check's failure. Cheap sizes run for real
(one run gives the shape, finiteness and in-place writes); larger ones on meta tensors. At the sizes a sweep
needs, a real run of a small module is far cheaper than a meta one (timm's SEModule(16) at 1…24²: 3 ms for
all 24 real runs, 160 ms on meta tensors, whose cost is Python dispatch, not arithmetic); once a real run
takes longer than ``probes.sizes.SLOW_S``, larger sizes go to meta tensors. Each forward's time goes to the
check's :class:`~.time_budget.TimeBudget`: once forwards are too slow for it, the sweep stops there.

>>> records, rule = size_sweep(settings, worker)
>>> rule.text
'any size'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SpecError, fmt_shape
from ..progress import Progress, Silent
from ..rules import Rule, area_follow_ups, follow_up_pairs, infer_rule
from .contract import Pattern
from .probes.channel_axis import REFERENCE, AxisTask, compare, layout_sizes
from .probes.sizes import SizeTask, run_sizes
from .time_budget import TimeBudget
from .worker import Reply, Worker

__all__ = ["SQUARES", "TOKENS", "CHANNELS", "ProbeSettings", "size_sweep", "channel_sweep", "layout_works",
           "spatial_axes"]

SQUARES = [*range(1, 25), 28, 32, 40, 48, 64]
TOKENS = [*range(1, 25), 28, 32, 36, 48, 49, 64, 96, 196]
CHANNELS = [*range(1, 17), 18, 20, 24, 32, 48, 64, 96, 128, 192, 256]


def spatial_axes(layout: str) -> tuple[str, ...]:
    """The axes the sweep varies: ``("n",)`` for tokens, else ``("h", "w")``."""
    return ("n",) if "n" in layout.split() else ("h", "w")


class ProbeSettings:
    """How to probe (not a network's plan): the input and output patterns, the axes the caller bound, the
    channel count, the batch, the largest input run for real, each probe's time limit and the whole check's
    time budget (None: no budget). ``progress``: where the sweeps and the checks report each answer as it
    arrives (in this process, never the worker's); silent unless the caller sets it."""

    def __init__(self, pattern: Pattern, out: Pattern | None, axes: dict[str, int], channels: int, batch: int,
                 real_elements: int, seconds: float, clock: TimeBudget | None = None) -> None:
        self.pattern, self.out, self.axes, self.channels = pattern, out, axes, channels
        self.batch, self.real_elements, self.seconds, self.clock = batch, real_elements, seconds, clock
        self.names = spatial_axes(pattern.text)
        self.progress: Progress = Silent()

    def bind(self, size: tuple[int, ...], channels: int | None = None, batch: int | None = None) -> dict[str, int]:
        """Axis sizes for a swept size (axes the user bound stay bound)."""
        sizes = {"b": batch or self.batch, "c": channels or self.channels, **dict(zip(self.names, size))}
        sizes.update({k: v for k, v in self.axes.items() if k not in ("c",) or channels is None})
        missing = [a for a in self.pattern.axes if a not in sizes]
        if missing:
            raise SpecError(f"axis {', '.join(missing)} of '{self.pattern.text}' has no size",
                            hint="bind it: --axis name=N")
        return sizes

    def task(self, sizes: dict[str, int]) -> SizeTask:
        """The size probe's task for these axis sizes (real when cheap)."""
        shape = self.pattern.shape(sizes)
        n = math.prod(shape)
        return SizeTask(shape, sizes["c"], self.pattern.text, real=n <= self.real_elements,
                        fallback=n <= 16 * self.real_elements)


def _record(settings: ProbeSettings, size: tuple[int, ...], sizes: dict[str, int], task: SizeTask, reply: Reply
            ) -> dict[str, Any]:
    rec: dict[str, Any] = {"size": list(size), "input": list(task.shape), "c": task.c}
    if not reply.ok:  # the worker hung or died here, or the check ran out of time before it
        error = reply.error or ""
        how = "not run" if error.startswith("not run") else "isolated"
        rec.update(ok=False, output=None, error=error, how=how, finite=None, wrote_input=None, warnings=[],
                   seconds=None)
        return rec
    assert reply.value is not None, "a size probe answers every task with a SizeRun"
    rec.update(reply.value.record())
    message = rec["error"]
    if message is None and settings.out is not None:
        want = settings.out.shape(sizes)
        if rec["output"] is None or tuple(rec["output"]) != want:
            message = f"output {fmt_shape(rec['output'] or ())}, contract says {fmt_shape(want)}"
    rec["ok"] = message is None
    rec["error"] = message
    return rec


_STOPPED = ("took longer than", "not run to the end")
"""A worker's words for an item it stopped waiting for."""


def _run(settings: ProbeSettings, worker: Worker, sizes: list[tuple[int, ...]], channels: list[int] | None = None,
         label: str = "sizes") -> list[dict[str, Any]]:
    """Probe each size (or ``sizes[0]`` at each channel count) in the worker; one record each. Once the time
    budget finds the forwards too slow, the rest are records of sizes not run, with that reason."""
    pairs = [(s, None) for s in sizes] if channels is None else [(sizes[0], c) for c in channels]
    bound = [settings.bind(s, c) for s, c in pairs]
    tasks = [settings.task(b) for b in bound]
    clock = settings.clock
    records: list[dict[str, Any]] = []
    if clock is None or clock.too_slow is None:
        said = _said(settings.progress, pairs, "channels" if channels is not None else label)
        stream = worker.stream(run_sizes, tasks, settings.seconds)
        waited = time.monotonic()
        try:
            for (size, _), axes, (task, reply) in zip(pairs, bound, stream):
                records.append(_record(settings, size, axes, task, reply))
                said(records[-1])
                if (reply.error or "").startswith(_STOPPED):  # the time it ran before it was stopped
                    records[-1]["seconds"] = round(time.monotonic() - waited, 3)
                waited = time.monotonic()
                if clock is not None and clock.observe(records[-1]):
                    break
        finally:
            stream.close()  # stopped early: the worker (still busy with the rest) is stopped too
    why = f"not run: {clock.too_slow.text()}" if clock is not None and clock.too_slow is not None else "not run"
    return records + [_record(settings, size, axes, task, Reply(error=why))
                      for (size, _), axes, task in list(zip(pairs, bound, tasks))[len(records):]]


def _said(progress: Progress, pairs: Sequence[tuple[tuple[int, ...], int | None]], label: str
          ) -> Callable[[dict[str, Any]], None]:
    """One step of ``progress`` per record that ran (``sizes 5/31: 5×5``, ``channels 3/28: c=3``), the next item
    described as each answer arrives; a record not run (the budget was spent) is no step."""
    what = [f"c={c}" if c is not None else "×".join(map(str, s)) for s, c in pairs]
    seen = [0]

    def said(record: dict[str, Any]) -> None:
        seen[0] += 1
        if record["how"] != "not run":
            i = seen[0]
            progress.advance(f"{label} {i + 1}/{len(what)}: {what[i]}" if i < len(what) else None)

    if what:
        progress.start(len(what), f"{label} 1/{len(what)}: {what[0]}")
    return said


def _fold_nonfinite(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN/Inf at some sizes only is a size rule: those sizes fail (the output's finiteness is the module's
    answer there). At no finite size, nothing changes: the finite-outputs check names them."""
    finite = [r for r in records if r["ok"] and r["finite"] is True]
    if finite:
        for r in records:
            if r["ok"] and r["finite"] is False:
                r.update(ok=False, error="NaN/Inf in the output")
    return records


_MEMORY = ("can't allocate", "not enough memory", "out of memory", "MemoryError", "killed its process (SIGKILL")


def _memory_bound(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Meta tensors cannot run out of memory: a size that only ran on meta, at least as large as one that ran
    out of memory for real, is marked as failing too (with the reason) rather than claimed to work."""
    failed = [math.prod(r["input"]) for r in records
              if r["how"] != "meta" and r["error"] and any(m in r["error"] for m in _MEMORY)]
    if failed:
        for r in records:
            if r["how"] == "meta" and r["ok"] and math.prod(r["input"]) >= min(failed):
                r.update(ok=False, how="inferred", error=f"not run for real: a smaller input ({min(failed):,} "
                                                          "values) already ran out of memory")
    return records


def size_sweep(settings: ProbeSettings, worker: Worker) -> tuple[list[dict[str, Any]], Rule]:
    """Every size of the sweep (and the follow-up non-square ones) with the rule that predicts them all."""
    sizes: list[tuple[int, ...]]
    if settings.names == ("n",):
        sizes = [(n,) for n in TOKENS if "n" not in settings.axes]
    else:
        sizes = [(s, s) for s in SQUARES]
    if not sizes or any(a in settings.axes for a in settings.names):  # the user bound the spatial axes: one size
        sizes = [tuple(settings.axes.get(a, 8) for a in settings.names)]
    records = _fold_nonfinite(_memory_bound(_run(settings, worker, sizes)))
    obs = {tuple(r["size"]): r["ok"] for r in records if r["how"] != "not run"}
    if len(settings.names) == 2 and len(sizes) > 1:
        # per axis or square only; then sides or area; then the rest of a fixed area's shapes
        for follow_up in (follow_up_pairs, area_follow_ups, area_follow_ups):
            records = _fold_nonfinite(records + _run(settings, worker, follow_up(obs), label="more sizes"))
            obs = {tuple(r["size"]): r["ok"] for r in records if r["how"] != "not run"}
    return records, _partial(settings.names, records) or _shapes_named(infer_rule(settings.names, obs), obs)


def _shapes_named(rule: Rule, obs: dict[tuple[int, ...], bool]) -> Rule:
    """A fixed area names the shapes that ran: ``h·w = 64 (8×8, 4×16, 2×32 …)`` (one orientation each where
    its transpose ran too; "…" where more ran or some were not tried)."""
    if rule.area is None or rule.area[0] != "fixed":
        return rule
    good = [s for s, ok in obs.items() if ok]
    shapes = sorted((s for s in good if s[0] <= s[1] or s[::-1] not in good), key=lambda s: (max(s) / min(s), s))
    pairs = sum(1 for h in range(1, rule.area[1] + 1) if rule.area[1] % h == 0)  # every h×w of that area
    more = len(shapes) > 3 or len(good) < pairs
    rule.text += f" ({', '.join('×'.join(map(str, s)) for s in shapes[:3])}{' …' if more else ''})"
    return rule


def _partial(names: tuple[str, ...], records: list[dict[str, Any]]) -> Rule | None:
    """Sizes left out (the time budget stopped the sweep): no rule is claimed from the rest."""
    left = [r for r in records if r["how"] == "not run"]
    if not left:
        return None
    why = left[0]["error"].removeprefix("not run: ")
    return Rule({a: ("any", None) for a in names}, simple=False, text=f"not determined: {why}")


def channel_sweep(settings: ProbeSettings, worker: Worker, size: tuple[int, ...]) -> tuple[list[dict[str, Any]], Rule]:
    """The module built at each channel count of CHANNELS and run at ``size``; the channel rule."""
    records = _fold_nonfinite(_run(settings, worker, [size], channels=CHANNELS))
    for rec, c in zip(records, CHANNELS):
        rec["size"] = [c]
    return records, infer_rule(("c",), {(c,): r["ok"] for r, c in zip(records, CHANNELS) if r["how"] != "not run"})


def layout_works(settings: ProbeSettings, worker: Worker) -> str | None:
    """None when the layout works, else why not: the first error where it runs at none of four ordinary sizes
    (c, h and w kept apart), or "runs but treats h as channels" where it runs and its result is not the
    ``b c h w`` result on the same numbers (see ``probes.channel_axis``)."""
    records = _run(settings, worker, layout_sizes(settings.pattern.text, settings.channels))
    ran = [r for r in records if r["error"] is None]
    if not ran:
        return records[0]["error"]
    if settings.pattern.text == REFERENCE or not ran[0]["how"].startswith("real"):
        return None
    task = AxisTask(tuple(ran[0]["input"]), settings.pattern.text, ran[0]["c"])
    reply = worker.call(compare, task, settings.seconds)
    found = reply.value
    if found is None or found.same is not False:
        return None
    how = f"rel. diff {found.rel_diff:.1e}" if found.rel_diff is not None else found.why
    return (f"runs but treats {found.position1} as channels: at {fmt_shape(tuple(ran[0]['input']))} its result is not "
            f"the {REFERENCE} result on the same numbers ({how})")
