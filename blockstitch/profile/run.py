"""One counted forward of a module, and — where the forward needs real values (a detector's NMS) — real runs on a
copy that say what the count depended on.

A detector's cost depends on its data: the second stage runs once per region proposal the RPN kept, and the
heads after it once per detection. So a real run records those counts per image (from the model's own ``rpn``
output and its detections), and the profile states them with the cost per proposal. A batch whose input is over
the real-run limit (:data:`blockstitch.meta.REAL_RUN_MAX_INPUT`) runs in chunks of the largest batch that fits,
and the counts are summed — each sample draws the same values either way (:func:`blockstitch.meta.real_inputs`),
so the sum is what one big run would have counted; a single sample over the limit is a located refusal.

>>> counted, how = count(model, [torch.empty(2, 3, 224, 224, device="meta")], real=True)
>>> counted.counter.macs, counted.proposals, how
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import meta
from ..counting import OpCounter
from ..errors import SpecError

__all__ = ["Counted", "DataCounts", "count", "count_run", "merge"]

Shapes = tuple[list[list[int]], list[int]]


@dataclass
class Counted:
    """What one counted forward saw: the counter (work per innermost module), each module's in/out shapes, the
    order modules were entered, and — on a real run of a detector — proposals and detections per image."""

    counter: OpCounter
    shapes: dict[str, Shapes]
    entered: list[str]
    batch: int
    proposals: list[int] = field(default_factory=list)
    detections: list[int] = field(default_factory=list)


@dataclass
class DataCounts:
    """How a data-dependent count was made and what it depended on (``Profile.data_dependent``)."""

    runs: int
    """Real runs summed (1, or the chunks of a batch over the real-run input limit)."""
    samples_per_run: int
    weights: str
    """``random`` (a model blockstitch built: timm, torchvision, an edit) or ``the module's own``."""
    proposals: list[int]
    """Region proposals per image the RPN kept (empty for a model without one)."""
    detections: list[int]
    """Detections per image the model returned (empty when it returns none)."""
    per_proposal_macs: int | None
    """MACs of the second stage (``roi_heads``) per proposal: its cost scales with the proposals."""
    per_item_macs: int

    def line(self) -> str:
        """One sentence saying what the count depended on."""
        runs = "one real run" if self.runs == 1 else f"{self.runs} real runs of ≤ {self.samples_per_run} samples"
        parts = [f"counted on {runs} with {self.weights} weights on random input (uniform [0, 1))"]
        if self.runs > 1:
            parts[0] += f", summed (one run of the batch is over the real-run input limit of " \
                f"{meta.REAL_RUN_MAX_INPUT:,} values)"
        if self.proposals:
            parts.append(_per_image(self.proposals, "proposals"))
        if self.proposals or self.detections:
            none = not any(self.detections) and self.weights == "random"
            parts.append(_per_image(self.detections, "detections") + (" (random weights score under the model's "
                                                                        "threshold)" if none else ""))
        text = "; ".join(parts)
        if self.per_proposal_macs is not None:
            text += f"; the heads' cost scales with these (per proposal: {self.per_proposal_macs / 1e6:,.2f} M MACs)"
        elif not self.proposals and not self.detections:
            text += "; the count can depend on the input's values"
        return f"{text}; per item: {self.per_item_macs / 1e9:,.3f} GMACs"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``data_dependent`` in the profile's JSON)."""
        return {"runs": self.runs, "samples_per_run": self.samples_per_run, "weights": self.weights,
                "input": "uniform [0, 1), one seed per sample", "proposals_per_image": self.proposals,
                "detections_per_image": self.detections, "macs_per_proposal": self.per_proposal_macs,
                "macs_per_item": self.per_item_macs}


def _per_image(counts: Sequence[int], what: str) -> str:
    """``150 proposals/image``, or ``140–150 proposals/image (290 in all)`` where images differ."""
    low, high = min(counts, default=0), max(counts, default=0)
    return f"{low:,} {what}/image" if low == high else f"{low:,}–{high:,} {what}/image ({sum(counts):,} in all)"


def _first_shape(value: Any) -> list[int]:
    first = value[0] if isinstance(value, (tuple, list)) and value else value
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    return list(first.shape) if isinstance(first, torch.Tensor) else []


def _detections(out: Any) -> list[int]:
    """Boxes per image when a forward returns torchvision's detections (a list of dicts with ``boxes``)."""
    if isinstance(out, (list, tuple)) and out and all(isinstance(d, dict) and "boxes" in d for d in out):
        return [len(d["boxes"]) for d in out]
    return []


def count_run(net: nn.Module, xs: list[torch.Tensor]) -> Counted:
    """One forward of ``net`` in eval mode under the counter, every named module tracked (work goes to the
    innermost; rows are folded later), shapes and call order recorded; its mode is restored."""
    done = Counted(OpCounter(), {}, [], xs[0].shape[0] if xs and xs[0].dim() else 1)

    def record(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            flat = [t for a in args for t in (a if isinstance(a, (tuple, list)) else (a,))]  # a concat's list
            done.shapes[name] = ([list(t.shape) for t in flat if isinstance(t, torch.Tensor)], _first_shape(out))
        return hook

    def enter(name: str) -> Callable[..., None]:
        return lambda mod, args: done.entered.append(name)

    def proposals(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        boxes = out[0] if isinstance(out, (tuple, list)) and out else None
        if isinstance(boxes, (list, tuple)) and all(isinstance(b, torch.Tensor) for b in boxes):
            done.proposals.extend(len(b) for b in boxes)

    targets = [(n, m) for n, m in net.named_modules() if n]
    handles = done.counter.track(targets) + [m.register_forward_hook(record(n)) for n, m in targets]
    handles += [m.register_forward_pre_hook(enter(n)) for n, m in targets]
    rpn = getattr(net, "rpn", None)
    if isinstance(rpn, nn.Module):  # torchvision's two-stage detectors: the proposals the second stage runs on
        handles.append(rpn.register_forward_hook(proposals))
    was = net.training
    try:
        with done.counter, torch.no_grad():
            out = net.eval()(*xs)
        if not any(t.is_meta for t in xs):
            done.detections = _detections(out)
    finally:
        for h in handles:
            h.remove()
        net.train(was)
    return done


def _leading(shapes: Shapes, batch: int) -> bool:
    """True when every shape given (in and out) leads with the batch, and at least one is given."""
    given = [s for s in (*shapes[0], shapes[1]) if s]
    return bool(given) and all(s[0] == batch for s in given)


def _rebatch(shape: list[int], part: int, total: int) -> list[int]:
    return [total, *shape[1:]] if shape and shape[0] == part else shape


def merge(parts: Sequence[Counted]) -> Counted:
    """Counts of chunks of one batch, summed: work, bytes and ops added; shapes whose leading size is the chunk's
    batch given the whole batch, inputs given one per image (a detector's box lists) joined; the call order of the
    first chunk; proposals and detections per image in order.

    >>> merge([count_run(net, [x[:2]]), count_run(net, [x[2:]])]).counter.macs == count_run(net, [x]).counter.macs
    True
    """
    first, total = parts[0], sum(p.batch for p in parts)
    counter = OpCounter()
    for part in parts:
        c = part.counter
        for mine, theirs in ((counter.flops, c.flops), (counter.estimate, c.estimate), (counter.bytes, c.bytes)):
            for key, value in theirs.items():
                mine[key] += value
        counter.flops_by_op.update(c.flops_by_op)
        for key, ops in c.uncounted.items():
            counter.uncounted[key].update(ops)
    shapes = {}
    for name, (ins, out) in first.shapes.items():
        batched = all(name in p.shapes and _leading(p.shapes[name], p.batch) for p in parts)
        per_item = all(name in p.shapes and len(p.shapes[name][0]) == p.batch for p in parts)  # a list per image
        if batched:
            shapes[name] = ([_rebatch(s, first.batch, total) for s in ins], _rebatch(out, first.batch, total))
        else:
            shapes[name] = ([s for p in parts for s in p.shapes[name][0]] if per_item else ins, out)
    return Counted(counter, shapes, list(first.entered), total,
                   [n for p in parts for n in p.proposals], [n for p in parts for n in p.detections])


def _real_runs(module: nn.Module, shapes: Sequence[Sequence[int]], why: str,
               real_module: Callable[[], nn.Module] | None) -> tuple[Counted, str, int, int]:
    """Count ``module`` on real copies: one run of the batch, or chunks of it where one run is over the limit."""
    if any(p.is_meta for p in module.parameters()):
        if real_module is None:
            raise meta.needs_data_error(module, shapes, why) or SpecError(f"cannot run {type(module).__name__}")
        module = real_module()
    batch = shapes[0][0] if shapes and shapes[0] else 1
    per_sample = sum(math.prod(s[1:]) for s in shapes)
    if per_sample > meta.REAL_RUN_MAX_INPUT or any(not s or s[0] != batch for s in shapes):
        raise meta.needs_data_error(module, [(1, *s[1:]) for s in shapes], why) or \
            SpecError(f"{type(module).__name__}'s inputs do not share one batch size: {list(shapes)}")
    chunk = max(1, min(batch, meta.REAL_RUN_MAX_INPUT // max(per_sample, 1)))
    dtype = meta.probe_dtype(module)
    with meta.torch_state_guard():
        net = meta.real_copy(module)
        parts = []
        for start in range(0, batch, chunk):
            torch.manual_seed(0)
            size = min(chunk, batch - start)
            parts.append(count_run(net, meta.real_inputs([(size, *s[1:]) for s in shapes], dtype, start)))
    how = "real run on a copy" if len(parts) == 1 else f"{len(parts)} real runs on a copy, ≤ {chunk} samples each"
    return merge(parts), f"{how} (its forward needs data on meta tensors: {why})", len(parts), chunk


def count(module: nn.Module, inputs: list[torch.Tensor], real: bool,
          real_module: Callable[[], nn.Module] | None = None) -> tuple[Counted, str, tuple[int, int] | None]:
    """Count one forward of ``module`` on these (meta) inputs. A network blockstitch built on meta for this call
    (``real=False``) runs as it is; anything else as a meta shadow, or — only when its forward needs data — on
    real copies (``real_module`` makes a real one when ``module`` is on meta). Returns (what was counted, how it
    was run, (real runs, samples per run) or None for a meta run)."""
    if not real:
        return count_run(module, inputs), "meta", None
    runs: list[tuple[int, int]] = []

    def on_data(why: str) -> tuple[Counted, str]:
        counted, how, n, chunk = _real_runs(module, [tuple(x.shape) for x in inputs], why, real_module)
        runs.append((n, chunk))
        return counted, how

    counted, how = meta.shape_run(module, [x.shape for x in inputs], count_run, on_data)
    return counted, how, runs[0] if runs else None
