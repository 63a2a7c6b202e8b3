"""Profiling that is right: parameters, MACs and FLOPs (always labelled), memory — per node, on meta tensors.

>>> p = profile("vit_b_16")
>>> round(p.macs / 1e9, 2), p.flops == 2 * p.macs
(17.56, True)
>>> print(p.to_markdown())          # a table to paste into a paper
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..assemble import Plan, build_module
from ..assemble.limits import check_batch
from ..errors import SpecError
from ..networks import Source
from ..subject import NETWORK_KINDS, Subject, subject
from .counter import OpCounter
from .report import to_csv, to_json, to_markdown
from .rows import edit_rows, fold, profile_rows, row_kinds
from .run import Counted, DataCounts, count

if TYPE_CHECKING:
    from .ultralytics_info import UltralyticsInfo

__all__ = ["Profile", "NodeProfile", "profile"]

ADAM_STATES = 2  # exp_avg and exp_avg_sq: what the training-step estimate assumes


@dataclass
class NodeProfile:
    """One node (or top-level module) of a profile."""

    name: str
    kind: str
    in_shapes: list[list[int]]
    out_shape: list[int]
    params: int
    macs: int
    share: float
    """Fraction of the network's MACs."""
    activation_bytes: int
    analytic_macs: int | None = None
    """The block's own analytic count (blockstitch networks only), for the cross-check."""

    @property
    def in_shape(self) -> list[int]:
        """Shape of the first input."""
        return self.in_shapes[0] if self.in_shapes else []


@dataclass
class Profile:
    """Totals and per-node figures. FLOPs = 2 × MACs; both are given and labelled everywhere."""

    name: str
    input_shape: list[int]
    batch: int
    params: int
    trainable_params: int
    macs: int
    param_bytes: int
    activation_bytes: int
    """Bytes of every tensor the forward pass produces (what a training step keeps for backward, at most)."""
    nodes: list[NodeProfile]
    uncounted: dict[str, int]
    """Ops with a cost but no MAC count (norms, softmax, elementwise, interpolation): op name → calls."""
    uncounted_flops_estimate: int
    """A rough FLOP estimate for those ops (`--all-ops`); not part of `flops`."""
    disagreements: list[str] = field(default_factory=list)
    """Nodes whose counted MACs differ from their block's analytic MACs by more than 1%."""
    method: str = "meta"
    """How it was counted: "meta" (a meta shadow, nothing allocated), or why a real run on a copy was needed
    (forwards with data-dependent ops such as a detector's NMS; their counts can depend on the data)."""
    train_flops: int | None = None
    """FLOPs of one training step's forward and backward (``profile(..., train=True)``), counted on meta tensors:
    ≈ 3 × forward, less the input gradient the first layer does not need. None when not asked for."""
    optimizer_flops: int | None = None
    """Elementwise work of one AdamW step over the trainable parameters (an estimate: one FLOP per element per
    op), apart from :attr:`train_flops`. None when not asked for."""
    ultralytics: UltralyticsInfo | None = None
    """For an ``ultralytics:`` model: Ultralytics' own ``model.info()`` figures beside ours, and why they differ."""
    data_dependent: DataCounts | None = None
    """For a forward counted on real runs (a detector): what the count depended on — proposals and detections
    per image, the cost per proposal and per item, how many runs. None for a meta count."""

    @property
    def flops(self) -> int:
        """Floating-point operations: 2 × MACs."""
        return 2 * self.macs

    @property
    def train_peak_bytes(self) -> int:
        """Estimate of a training step's peak: weights + gradients + Adam's two states + activations."""
        return self.param_bytes * (2 + ADAM_STATES) + self.activation_bytes

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape other tools read."""
        return to_json(self)

    def to_markdown(self, all_ops: bool = False) -> str:
        """A Markdown table (per node and total), ready to paste."""
        return to_markdown(self, all_ops)

    def to_csv(self) -> str:
        """CSV of the per-node figures."""
        return to_csv(self)


def _meta_inputs(shapes: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    return [torch.empty(tuple(s), device="meta") for s in shapes]


def _data_counts(counted: Counted, runs: tuple[int, int], macs: int, batch: int, own: bool) -> DataCounts:
    """What a count made on real runs depended on; the second stage (torchvision's ``roi_heads``) per proposal."""
    second = sum(v for k, v in counted.counter.flops.items() if k == "roi_heads" or k.startswith("roi_heads.")) // 2
    proposals = sum(counted.proposals)
    per_proposal = second // proposals if proposals and second else None
    return DataCounts(runs[0], runs[1], "the module's own" if own else "random", counted.proposals,
                      counted.detections, per_proposal, macs // max(batch, 1))


def _unique_params(module: nn.Module) -> tuple[int, int, int]:
    seen: set[int] = set()
    total = trainable = nbytes = 0
    for p in module.parameters():  # parameters() already yields a shared tensor once
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nbytes += p.numel() * p.element_size()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable, nbytes


def profile(source: Subject | Source | Plan | nn.Module, input_shape: Sequence[int] | None = None, batch: int = 1,
            depth: int = 1, train: bool = False, ultralytics: bool = True) -> Profile:
    """Profile a spec file, a zoo name, a plan, ``"timm:<model>"``, or any ``nn.Module`` (timm, torchvision…).

    Nothing is allocated: blockstitch networks are built on meta, other modules are run with meta stand-ins
    for their weights. ``input_shape`` is without the batch; a timm model's default input is used if omitted.
    Plain modules are broken down by their modules ``depth`` levels down (1 = top-level children), listed in
    the order they run; a container the forward never calls as a whole is shown as its children that ran. An
    edit spec's stitched blocks are rows of their own kind where they run (``ema (gated)`` after ``layer2``).
    ``train=True`` also counts one training step: forward + backward (:attr:`Profile.train_flops`) and the
    optimizer step's elementwise work (:attr:`Profile.optimizer_flops`), both on meta tensors.
    For an ``ultralytics:`` model, ``ultralytics=True`` also asks Ultralytics' own ``model.info()`` (a real build,
    counted by thop, unfused and fused) and explains the difference (:attr:`Profile.ultralytics`).
    """
    found = subject(source, accept=NETWORK_KINDS, input_shape=input_shape)  # resolved once, the shape checked
    check_batch(batch)
    extras: dict[str, list[str]] = {}
    runs: tuple[int, int] | None = None  # (real runs, samples per run) where the forward needed data
    if found.what not in ("spec", "plan"):  # a module: the user's own, a foreign model, a stitched edit (on meta)
        module = found.module("meta")
        shape = found.input_shape  # the caller's, an edit spec's `input:`, else the module's natural input
        if shape is None:
            raise SpecError("profiling a plain nn.Module needs input_shape (without the batch), e.g. (3, 224, 224)")
        real = None if found.is_given_module else (lambda: found.module(None))  # random weights, on the CPU
        counted, method, runs = count(module, _meta_inputs([(batch, *shape)]), True, real)
        counter, shapes, entered = counted.counter, counted.shapes, counted.entered
        names = profile_rows(module, depth, entered)
        kinds = row_kinds(module, names)
        name, analytic = type(module).__name__, {}
        if found.report is not None:  # an edit spec: stitched blocks under their kind, where they run
            name = found.name
            names, kinds, extras = edit_rows(module, found.report, names, kinds)
    else:
        counter = OpCounter()
        if found.what == "plan":  # a plan already made: run its meta network once under the counter
            the_plan = found.plan()
            module = build_module(the_plan, reuse_meta=True)
            counter, method = count(module, _meta_inputs([the_plan.input.shape]), False)[0].counter, "meta"
        else:  # one meta forward only: the planner's own, counted step by step
            method = "meta"
            the_plan = found.plan(input_shape, batch, observe=counter.step)
            module = build_module(the_plan, reuse_meta=True)
        names = [s.name for s in the_plan.steps]
        shapes = {s.name: ([list(x) for x in s.in_shapes], list(s.out.shape)) for s in the_plan.steps}
        shape, name = the_plan.input.shape[1:], the_plan.name
        kinds = {s.name: s.kind for s in the_plan.steps}
        analytic = {s.name: s.macs for s in the_plan.steps}
    total_macs = sum(counter.flops.values()) // 2
    flops, nbytes = fold(counter.flops, names), fold(counter.bytes, names)
    nodes, disagreements = [], []
    for node_name in names:
        macs = flops[node_name] // 2
        ins, out = shapes.get(node_name, ([], []))
        held = [module.get_submodule(n) for n in (node_name, *extras.get(node_name, ()))]
        own_params = _unique_params(nn.ModuleList(held))[0]
        nodes.append(NodeProfile(node_name, kinds[node_name], ins, out, own_params, macs,
                                 macs / total_macs if total_macs else 0.0, nbytes[node_name],
                                 analytic.get(node_name)))
        expected = analytic.get(node_name)
        if expected is not None and abs(expected - macs) > 0.01 * max(expected, macs, 1):
            disagreements.append(f"{node_name}: counted {macs:,} MACs, its block says {expected:,}")
    uncounted: Counter[str] = Counter()
    for per_node in counter.uncounted.values():
        uncounted.update(per_node)
    params, trainable, param_bytes = _unique_params(module)
    result = Profile(name, list(shape), batch, params, trainable, total_macs, param_bytes,
                     sum(counter.bytes.values()), nodes, dict(sorted(uncounted.items())),
                     sum(counter.estimate.values()), disagreements, method)
    if found.what not in ("spec", "plan") and runs is not None:
        result.data_dependent = _data_counts(counted, runs, total_macs, batch, found.is_given_module)
    if train:
        from .train import train_counts

        result.train_flops, result.optimizer_flops = train_counts(module, shape, batch)
    if ultralytics and found.what == "ultralytics":
        from .ultralytics_info import ultralytics_info

        result.ultralytics = ultralytics_info(found, result, lambda fused: profile(fused, input_shape=shape))
    return result
