"""Stitching into existing networks (模块缝合): insert, replace, wrap or remove blocks in any ``nn.Module`` —
a zoo network, a spec, a timm model — keeping every untouched parameter, its value and its name.

>>> model, report = stitch(timm.create_model("resnet50"), insert=[{"after": "layer*", "block": {"kind": "cbam"}}])
>>> print(report)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import ValidationError
from torch import nn

from ..assemble import Located, build_module, make_plan, resolve
from ..blockspec import Shape
from ..errors import SpecError, fmt_shape, pydantic_error
from ..meta import natural_input, real_copy, torch_state_guard
from ..sources_ultralytics import unwrap_ultralytics
from .apply import apply_edits
from .edits import EDIT_KINDS, EditRecord, EditSpec, parse_edits
from .points import Recording, record_shapes
from .sizes import InputRule, Prober, input_rule
from .weights import load_into, read_weights, weights_budget

__all__ = ["stitch", "Stitched", "StitchReport", "EditRecord", "EditSpec", "EDIT_KINDS", "is_edit", "load_edit",
           "build_edit", "InputRule"]


@dataclass
class StitchReport:
    """What a stitch changed: every edit at every path, and the totals before and after."""

    name: str
    input_shape: Shape
    edits: list[EditRecord]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    new_params: int = 0
    """Parameters of the stitched network that the base did not have (newly initialised), every edit kind."""
    kept_params: int = 0
    """Base parameters still in the stitched network, the same tensors with their values."""
    removed_params: int = 0
    """Base parameters the edits took out (replaced or removed modules)."""
    prober: Prober | None = field(default=None, repr=False, compare=False)
    """A meta shadow of the stitched network (no storage), kept to find :attr:`input_rule` when first asked."""
    _rule: list[InputRule | None] = field(default_factory=list, repr=False, compare=False)

    @property
    def input_rule(self) -> InputRule | None:
        """The rule the stitched network's input obeys (``h and w multiples of 32``, with the module that causes
        it), found on meta tensors when first asked (a few seconds at most) and kept; None where meta tensors
        cannot tell or the input is not ``(c, h, w)``.

        >>> stitch(model, insert=[...]).report.input_rule.text
        'h and w multiples of 224 (because of WindowAttn at layer4.1_window)'
        """
        if not self._rule:
            self._rule.append(input_rule(self.prober, tuple(self.input_shape)) if self.prober is not None else None)
        return self._rule[0]

    def refuse(self, input_shape: Sequence[int] | None) -> None:
        """Raise a located error (``--input``) when the stitched network does not run at ``input_shape``
        (without the batch), naming the rule it breaks, the module that causes it and the nearest sizes that
        pass; nothing when it runs there, or when no input is given. Only meta tensors are run."""
        if input_shape is None or self.prober is None:
            return
        from ..assemble.limits import check_input_shape

        shape = check_input_shape(input_shape, "--input")  # limits first: a size too large is said as such
        if self.prober.ok(shape) is not False:
            return  # it runs there (one meta forward): no sweep needed
        found = self.input_rule
        problem = found.refusal(shape) if found is not None else None
        if problem is not None:
            raise SpecError(problem, path="--input")

    @property
    def untouched_params(self) -> int:
        """Base parameters kept as they were (:attr:`kept_params`)."""
        return self.kept_params

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "input_shape": list(self.input_shape), "params_before": self.params_before,
                "params_after": self.params_after, "macs_before": self.macs_before, "macs_after": self.macs_after,
                "new_params": self.new_params, "kept_params": self.kept_params,
                "removed_params": self.removed_params,
                "input_rule": self.input_rule.to_dict() if self.input_rule is not None else None,
                "edits": [{"op": e.op, "pattern": e.pattern, "path": e.path, "kind": e.kind, "module": e.module,
                           "in_shape": list(e.in_shape), "out_shape": list(e.out_shape), "params": e.params,
                           "new": e.new, "removed": e.removed, "notes": list(e.notes)}
                          for e in self.edits]}

    def __str__(self) -> str:
        dp, dm = self.params_after - self.params_before, self.macs_after - self.macs_before
        lines = [f"{self.name}: {len(self.edits)} edit(s) at input {fmt_shape(self.input_shape)}"]
        lines += [f"  {e.op:7s} {e.kind:12s} {e.module:28s} {fmt_shape(e.in_shape):>16s} → "
                  f"{fmt_shape(e.out_shape):16s} {e.params:+,} params"
                  + (f" ({e.new:,} new, {e.removed:,} removed)" if e.removed else "")
                  + (f" ({'; '.join(e.notes)})" if e.notes else "")
                  for e in self.edits]
        lines.append(f"  params {self.params_before:,} → {self.params_after:,} ({dp:+,}, "
                     f"{100 * dp / max(self.params_before, 1):+.2f}%); MACs {self.macs_before:,} → {self.macs_after:,} "
                     f"({100 * dm / max(self.macs_before, 1):+.2f}%); {self.new_params:,} newly initialised, "
                     f"{self.kept_params:,} kept, {self.removed_params:,} removed")
        if self.input_rule is not None:
            lines.append(f"  input sizes: {self.input_rule.text}")
        return "\n".join(lines)


class Stitched(NamedTuple):
    """``model, report = stitch(...)``."""

    model: nn.Module
    report: StitchReport


def stitch(model: nn.Module, *, input_shape: Sequence[int] | None = None, name: str | None = None,
           inplace: bool = False, **edits: Sequence[Any]) -> Stitched:
    """Stitch blocks into a copy of ``model`` and report what changed; ``model`` itself is left exactly as it was
    (``inplace=True`` edits it instead, saving the copy's memory).

    The edits come by kind, as keywords (every kind of :data:`EDIT_KINDS`): ``insert=``, ``replace=``,
    ``wrap=``, ``remove=``, each a list of dicts (or edit models) as in spec files: ``{"after": "layer*",
    "block": {"kind": "cbam"}, "identity_init": True}`` (insert), ``{"path": "layer4.*.conv2", "block": {...}}``
    (replace), ``{"path": ..., "wrapper": "gated"}`` (wrap), ``{"path": ...}`` (remove). Paths are module-name
    globs. Every block's channels come from the shape flowing at its target (one meta forward of the base); all
    shapes are checked
    before a module is built, and the stitched network is run once more on meta tensors before returning.
    ``input_shape`` (without batch) defaults to a blockstitch network's, a timm model's or an Ultralytics
    model's own. A block may also be a plain ``nn.Module`` class (``{"after": "layer*", "block": PaperModule,
    "args": {...}}``): its channel argument is inferred from its constructor and the shape at the target.

    Stitched blocks are registered beside their target and run from its forward hook, so no index, name or
    attribute of the base changes (an Ultralytics model keeps every layer's ``f``/``i`` and its save list).

    ``report.input_rule`` states the input sizes the stitched network takes (``h and w multiples of 32 (because
    of Concat at model.11 …)``), found on meta tensors when first asked; ``report.refuse(shape)`` raises a
    located error naming the rule and the nearest sizes that pass when the network does not run at ``shape``.

    An Ultralytics ``YOLO`` object is accepted for its network (``yolo.model``); the stitched network goes back
    into Ultralytics' trainer with :func:`blockstitch.yolo.to_ultralytics`.

    >>> new, report = stitch(timm.create_model("resnet18"), insert=[{"after": "layer*", "block": {"kind": "se"}}])
    """
    model = unwrap_ultralytics(model)
    shape = tuple(input_shape) if input_shape is not None else natural_input(model)
    if shape is None:
        raise SpecError("stitch() needs input_shape (without the batch) for this model, e.g. (3, 224, 224)")
    full = (1, *shape)
    parsed = parse_edits(edits)
    rec = record_shapes(model, full)  # shapes at every module, params and MACs, from one run of a meta shadow
    with torch_state_guard():  # new blocks draw their weights from the RNG; the caller's stream is kept
        if not inplace:
            model = real_copy(model)
        base = _tensors(model)
        old = {id(m) for m in model.modules()}
        records = apply_edits(model, rec, parsed)
        _new_modules_take_holders_mode(model, old)
    now = _tensors(model)
    after = record_shapes(model, full)  # the stitched network, whole, on meta tensors
    _runs_once(records, after)
    report = StitchReport(name or type(model).__name__, shape, records, rec.params, after.params, rec.macs,
                          after.macs, new_params=sum(p.numel() for k, p in now.items() if k not in base),
                          kept_params=sum(p.numel() for k, p in now.items() if k in base),
                          removed_params=sum(p.numel() for k, p in base.items() if k not in now),
                          prober=Prober(model))  # the input rule is found from it when first asked
    return Stitched(model, report)


def _new_modules_take_holders_mode(model: nn.Module, old: set[int]) -> None:
    """Every module the edits added runs in the mode of the module holding it (a block stitched into an eval
    network is in eval: its BatchNorm uses running statistics, as the network's own do); the base's modules keep
    theirs, mixed ones included (a frozen BN in eval inside a training network)."""
    modes = {"": model.training}
    for name, module in model.named_modules():
        if name:
            if id(module) not in old:
                module.training = modes.get(name.rpartition(".")[0], model.training)
            modes[name] = module.training


def _tensors(model: nn.Module) -> dict[int, nn.Parameter]:
    """Every parameter of ``model`` by identity: new, kept and removed are counted by which tensors the stitched
    network holds, whatever the edit kind (a same-size replace is all new, not "0 added"). The dict holds the
    tensors, so a removed one's id cannot be reused by a new one while both dicts live."""
    return {id(p): p for p in model.parameters()}


def _runs_once(records: list[EditRecord], after: Recording) -> None:
    """Every inserted block runs once per run of its target: a holder whose forward runs its children in turn
    (found only by running it) would run it again."""
    for r in records:
        if r.op == "insert" and r.path in after.shapes and after.order.count(r.module) > after.order.count(r.path):
            holder = r.module.rpartition(".")[0] or "the model"
            raise SpecError(f"cannot stitch '{r.kind}' at '{r.path}': '{holder}' runs its children in turn, so "
                            f"the new block would run {after.order.count(r.module)} times per forward",
                            hint="stitch at a module inside it, or wrap the model in a Module first")


def is_edit(located: Located) -> bool:
    """True for a spec that edits another (`extends:`)."""
    return isinstance(located.data, dict) and "extends" in located.data


def load_edit(located: Located) -> EditSpec:
    """Validate an edit spec, with located errors."""
    try:
        return EditSpec.model_validate(located.data)
    except ValidationError as err:
        raise pydantic_error(err, model=EditSpec, what="the edit spec", located=located) from None


def _base(spec: EditSpec, located: Located, device: str | None) -> nn.Module:
    from ..sources import NETWORKS, foreign_model
    from ..sources import resolve as resolve_name  # the one resolver: `extends:` names a registry entry only

    found = resolve_name(spec.extends, NETWORKS, origin=located, loc=("extends",))
    model = foreign_model(found, device)
    if model is not None:
        return model
    base_loc = found.located
    if base_loc is None:  # not a network the resolver knows how to build (a foreign one was built above)
        raise SpecError(f"'extends: {spec.extends}' names no network", hint="a zoo name, a spec file or timm:<name>")
    if is_edit(base_loc):
        return build_edit(base_loc, device=device).model
    plan = make_plan(resolve(base_loc), spec.input)
    return build_module(plan, None if device == "meta" else device, reuse_meta=device == "meta")


def _loc_of(path: str | None) -> tuple[Any, ...]:
    if not path:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[A-Za-z_][\w]*|\d+", path))


def build_edit(located: Located, device: str | None = None) -> Stitched:
    """Build an edit spec: its base (``device="meta"`` allocates nothing), its weights, then the stitch.

    On meta, a network whose forward needs real values there (a stitched paper block making a CPU tensor in its
    forward, a ``.item()``) is built once for real on the CPU instead, within the memory limits, and run on a copy
    at its input shape, as a given module would be."""
    try:
        return _build_edit(located, device)
    except SpecError as err:
        if device != "meta" or not getattr(err, "needs_real_weights", False):
            raise
    from ..assemble.limits import check_fits

    spec = load_edit(located)
    params = sum(p.numel() for p in _base(spec, located, "meta").parameters())
    check_fits(params * 4, 0, "cpu", f"building '{spec.name}' for real (its forward needs real values)",
               located.file)
    result = _build_edit(located, None)
    result.model.eval()
    return result


def _build_edit(located: Located, device: str | None) -> Stitched:
    spec = load_edit(located)
    try:
        base = _base(spec, located, device)
        if spec.weights is not None:
            from ..sources import weights_file

            state = read_weights(weights_file(spec.weights, located), weights_budget(base))
            if device == "meta":  # checking only: the file must fit, nothing is copied
                load_into(base, {k: v.to("meta") for k, v in state.items()}, spec.weights)
            else:
                load_into(base, state, spec.weights)
        result = stitch(base, input_shape=spec.input, name=spec.name, inplace=True, **spec.edits())
    except SpecError as err:
        line, column = located.mark(_loc_of(err.path))
        raise err.located(file=located.file, line=line, column=column) from None
    result.model.train(device != "meta")
    return result
