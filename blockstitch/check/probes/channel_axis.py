"""Does the channel argument bind to the layout's channel axis? Running is not working: SE- and ECA-style channel
attention written for ``b c h w`` also *runs* on a ``b h w c`` input — it pools over the last two axes and gates
whatever sits at position 1 — but it treats H as the channels.

Two defences, both used by the layout probe (``sweep.layout_works``):

* the probe shapes keep c, h and w apart (:func:`layout_sizes`): a layer sized for c channels can then only run
  where c sits on the axis it reads, so a module built for ``b c h w`` with channel-sized layers fails on
  ``b h w c`` instead of running by coincidence (h = w = c);
* a layout other than ``b c h w`` that runs is compared with the ``b c h w`` run on the same numbers (the input
  rearranged, the output rearranged back; the same module, or the same factory's build): a module that truly
  follows the layout gives the same result; one that reads position 1 as channels does not (:func:`compare`).

``b c h w`` is the reference (PyTorch's own convention); a module that runs in no other layout is not compared.
Where the caller declares the layout (``--in "b h w c"``), :class:`ChannelAxis` makes the same comparison at a
working size with c, h and w apart and reports it (not required: the convention is only a convention).

>>> layout_sizes("b h w c", 8)
[(9, 12), (14, 10), (9, 9), (14, 14)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from einops import rearrange

from ...errors import fmt_shape
from ..report import CheckReport, CheckResult
from .base import Check, Evidence, first_line, rel_diff, sample_input, tensors

if TYPE_CHECKING:
    from ..under_test import UnderTest

__all__ = ["REFERENCE", "layout_sizes", "AxisTask", "AxisRun", "compare", "grid", "ChannelAxis"]

REFERENCE = "b c h w"
_SPATIAL = [(8, 12), (14, 10), (8, 8), (14, 14)]
_TOKENS = [12, 16, 49, 36]


def layout_sizes(layout: str, channels: int) -> list[tuple[int, ...]]:
    """The sizes a layout is probed at: non-square ones first (then squares, for square-only modules), no side
    equal to the channel count (nor to the other side), so no axis can pass for another."""
    def apart(v: int, *others: int) -> int:
        while v in others:
            v += 1
        return v

    if "n" in layout.split():
        return [(apart(n, channels),) for n in _TOKENS]
    sizes: list[tuple[int, ...]] = []
    for h, w in _SPATIAL:
        h2 = apart(h, channels)
        sizes.append((h2, apart(w, channels, h2) if w != h else h2))
    return sizes


def grid(n: int) -> tuple[int, int]:
    """The most square (h, w) with h·w = n: how ``n`` tokens are laid out as a ``b c h w`` map to compare."""
    h = max(d for d in range(1, int(n ** 0.5) + 1) if n % d == 0)
    return h, n // h


@dataclass(frozen=True)
class AxisTask:
    """Compare ``layout`` at ``shape`` (channels ``c``) with the ``b c h w`` run on the same numbers."""

    shape: tuple[int, ...]
    layout: str
    c: int


@dataclass
class AxisRun:
    """``same``: the results agree (None: no comparison — ``b c h w`` fails there, or the two builds differ);
    ``rel_diff``; ``position1``: the name of the axis the layout puts where ``b c h w`` has c; ``why``."""

    same: bool | None
    rel_diff: float | None = None
    position1: str = "h"
    why: str = ""


def _to_reference(layout: str, h: int, w: int) -> tuple[str, dict[str, int]]:
    """The einops pattern from ``layout`` to ``b c h w`` and the sizes it needs."""
    source = " ".join("(h w)" if a == "n" else a for a in layout.split())
    return f"{source} -> {REFERENCE}", {"h": h, "w": w}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """The same module, or two builds with identical parameters and buffers (else nothing is compared)."""
    if a is b:
        return True
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


def _one(held: UnderTest, task: AxisTask) -> AxisRun:
    names = task.layout.split()
    position1 = names[1]
    sizes = dict(zip(names, task.shape))
    h, w = (sizes["h"], sizes["w"]) if "h" in sizes else grid(sizes["n"])
    forward, axes = _to_reference(task.layout, h, w)
    x = sample_input(task.shape, 8)
    ref_in = rearrange(x, forward, **axes).contiguous()
    module = held.module(task.shape, task.layout, task.c).eval()
    try:
        reference = held.module(tuple(ref_in.shape), REFERENCE, task.c).eval()
    except Exception as err:  # noqa: BLE001 — no b c h w build at this width: nothing to compare with
        return AxisRun(None, position1=position1, why=f"{REFERENCE} cannot be built: {first_line(err)}")
    if not _same_weights(module, reference):
        return AxisRun(None, position1=position1, why=f"the {REFERENCE} build has other weights")
    with torch.no_grad():
        out = tensors(module(x.clone()))[0]
        try:
            ref = tensors(reference(ref_in.clone()))[0]
        except Exception as err:  # noqa: BLE001 — b c h w does not run here: this layout is its own
            return AxisRun(None, position1=position1, why=f"{REFERENCE} does not run: {first_line(err)}")
    back = f"{REFERENCE} -> {forward.split(' -> ')[0]}"
    if ref.dim() == 4:  # a map (of any size): laid out as the layout lays out its input
        ref = rearrange(ref, back)
    if out.shape != ref.shape:
        return AxisRun(False, position1=position1,
                       why=f"its output {tuple(out.shape)} is not the {REFERENCE} result {tuple(ref.shape)} laid out")
    same = bool(torch.allclose(out.float(), ref.float(), rtol=1e-4, atol=1e-5))
    return AxisRun(same, rel_diff(out, ref), position1)


def compare(held: UnderTest, items: Sequence[AxisTask]) -> Iterator[AxisRun]:
    """The worker's side: each layout's run against the ``b c h w`` run on the same numbers."""
    for task in items:
        try:
            yield _one(held, task)
        except Exception as err:  # noqa: BLE001 — no comparison is no verdict either way
            yield AxisRun(None, why=first_line(err))


def _apart(records: list[dict[str, Any]], base: dict[str, Any], c: int) -> dict[str, Any] | None:
    """The working real size of the sweep nearest the base whose sides are at least 3 (6 tokens) and differ
    from c and from each other (None: there is none)."""
    least = 6 if len(base["size"]) == 1 else 3
    fits = [r for r in records if r["ok"] and r["how"].startswith("real") and c not in r["size"]
            and len(set(r["size"])) == len(r["size"]) and min(r["size"]) >= least]
    return min(fits, key=lambda r: abs(math.prod(r["input"]) - math.prod(base["input"])), default=None)


class ChannelAxis(Check[AxisTask, AxisRun]):
    """A declared layout other than ``b c h w``: the result is the ``b c h w`` result on the same numbers where
    the module also runs as ``b c h w`` (reported, not required: ``b c h w`` is only the usual convention)."""

    name = "channel axis"
    order = 5

    def tasks(self, found: Evidence) -> list[AxisTask]:
        if found.at.layout == REFERENCE:
            return []
        record = _apart(found.sweep, found.base, found.at.c)
        return [AxisTask(tuple(record["input"]), found.at.layout, record["c"])] if record else []

    def run(self, held: UnderTest, task: AxisTask) -> AxisRun:
        return next(compare(held, [task]))

    def judge(self, found: Evidence, report: CheckReport) -> CheckResult | None:
        answer = found.one(ChannelAxis)
        if answer is None:
            return None
        shown = fmt_shape(answer.task.shape)
        run = answer.value
        if run is None or run.same is None:
            why = answer.error if run is None else run.why
            return CheckResult(self.name, "skipped", f"not compared with {REFERENCE} at {shown}: {why}",
                               required=False)
        if run.same:
            return CheckResult(self.name, "passed", f"c binds to the channel axis: the {REFERENCE} result on the "
                               f"same numbers at {shown} (rel. diff {run.rel_diff:.1e})", required=False)
        how = f"rel. diff {run.rel_diff:.1e}" if run.rel_diff is not None else run.why
        return CheckResult(self.name, "failed", f"runs but treats {run.position1} as channels: at {shown} its "
                           f"result is not the {REFERENCE} result on the same numbers ({how})", required=False)
