"""From a plan to a plain ``nn.Module``: one submodule per step, wired by generated code (torch.fx).

The forward is straight-line Python that torch.fx writes from the plan (``print(model.code)`` shows it): no
per-forward interpretation of the spec, so ``torch.compile`` and ``torch.export`` see plain PyTorch.
Submodule names are the node ids, so ``layer1.0.conv1.weight`` means what it means in torchvision.
"""

from __future__ import annotations

import operator
import re
from contextlib import nullcontext

import torch
import torch.fx as fx
from torch import nn

from .plan import Plan

__all__ = ["build_module"]


def _attach(root: nn.Module, name: str, module: nn.Module) -> None:
    parent = root
    *folders, leaf = name.split(".")
    for folder in folders:
        child = parent._modules.get(folder)
        if child is None:
            child = nn.Module()
            parent.add_module(folder, child)
        parent = child
    parent.add_module(leaf, module)


def _class_name(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:] for w in words if w)
    return text if text and text[0].isalpha() else f"Net{text}"


def build_within_limits(plan: Plan, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> fx.GraphModule:
    """:func:`build_module`, limits first: on a real device the weights must fit in free memory (refused with the
    figures); on ``"meta"`` nothing is allocated and the plan's meta modules are used as they are.

    >>> build_within_limits(plan, "meta").meta["blockstitch_plan"] is plan
    True
    """
    meta = device is not None and torch.device(device).type == "meta"
    if not meta:  # limits before allocation: the weights must fit in free memory
        from .limits import check_fits

        itemsize = torch.empty((), dtype=dtype).element_size() if dtype is not None else 4
        check_fits(plan.params * itemsize, 0, str(device or "cpu"), f"building '{plan.name}'", plan.file)
    return build_module(plan, None if meta else device, dtype, reuse_meta=meta)


def build_module(plan: Plan, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 reuse_meta: bool = False) -> fx.GraphModule:
    """Build every step's module (on ``device``) and wire them as the plan says.

    With ``reuse_meta=True`` the plan's meta modules are used as they are (a network without storage, for
    shape work and profiling); otherwise every module is constructed anew with its normal initialisation.
    """
    root = nn.Module()
    graph = fx.Graph()
    values: dict[str, fx.Node] = {"input": graph.placeholder("x")}
    with torch.device(device) if device is not None else nullcontext():
        for step in plan.steps:
            module = step.meta_module if reuse_meta and step.meta_module is not None else step.spec.build(
                step.in_shapes)
            _attach(root, step.name, module)
            call = graph.call_module(step.name, tuple(values[i] for i in step.inputs))
            for i, tap in enumerate(step.taps):  # a multi-output node: one getitem per named output
                values[tap] = graph.call_function(operator.getitem, (call, i))
            values[step.name] = values[list(step.taps)[-1]] if step.taps else call
    outs = [values[o] for o in plan.outputs]
    if plan.output_keys is not None:  # `outputs: {out: head, aux: aux}` → a dict, as torchvision's segmenters
        graph.output(dict(zip(plan.output_keys, outs)))
    else:
        graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    model = fx.GraphModule(root, graph, class_name=_class_name(plan.name))
    if dtype is not None:
        model.to(dtype)
    model.meta["blockstitch_plan"] = plan
    return model

