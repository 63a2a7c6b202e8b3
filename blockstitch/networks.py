"""Networks from sources: a spec (file, zoo name, dict) loaded, planned on meta tensors, built — or, for an edit
spec, its base built and stitched.

This is the floor the tools stand on (``profile``, ``check``, ``bench``, ``graph`` import it); :mod:`blockstitch.api`
re-exports it as the public API. Names are looked up by the one resolver, :mod:`blockstitch.sources`.

>>> plan("resnet50").params
25557032
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from .assemble import Located, Network, Plan, build_module, make_plan, resolve
from .assemble.planner import StepContext
from .errors import SpecError

__all__ = ["Source", "load_spec", "plan", "build", "is_edit_source"]

Source = Union[str, Path, dict[str, Any], Network]
"""A spec file path, a zoo name (`resnet50`), a spec as a dict, or an already loaded :class:`Network`."""


def _located(source: str | Path | dict[str, Any]) -> Located:
    from .sources import resolve as resolve_source  # the one resolver: names are looked up, never imported

    return resolve_source(source, accept={"spec", "edit"}).located  # type: ignore[return-value]  # set for specs


def is_edit(located: Located) -> bool:
    """True for a spec that edits another (`extends:`); the same test as :func:`blockstitch.stitch.is_edit`,
    here so that planning a plain spec does not import the stitcher."""
    return isinstance(located.data, dict) and "extends" in located.data


def _build_edit(located: Located, device: str | None) -> Any:
    from .stitch import build_edit  # only edit specs need the stitcher

    return build_edit(located, device)


def is_edit_source(source: object) -> bool:
    """True when ``source`` is a spec that edits another network (`extends:`)."""
    return isinstance(source, (str, Path, dict)) and is_edit(_located(source))


def load_spec(source: Source) -> Network:
    """Load and validate a spec into a :class:`Network` (nodes resolved, not yet shape-checked).

    >>> net = load_spec("unet")
    >>> net.nodes[0].id
    'inc'
    """
    if isinstance(source, Network):
        return source
    if isinstance(source, (str, Path, dict)):
        located = _located(source)
        if is_edit(located):
            raise SpecError(f"'{located.data.get('name', source)}' edits '{located.data['extends']}': it has no "
                            "plan of its own", file=located.file,
                            hint="`blockstitch check` shows what it changes; blockstitch.build / stitch build it")
        return resolve(located)
    raise SpecError(f"cannot load a spec from {type(source).__name__}",
                    expected="a path, a zoo name, a dict or a Network")


def plan(source: Source, input_shape: Sequence[int] | None = None, batch: int = 1,
         observe: StepContext | None = None, verify: bool = True) -> Plan:
    """Every node's in/out shape, layout, params and MACs, found on meta tensors (no memory allocated).

    ``input_shape`` overrides the spec's input (without the batch), e.g. ``(3, 1024, 1024)``.
    ``verify=False`` takes the shapes and MACs of blockstitch's own blocks from their specs' rules without running
    those modules on meta tensors (the same plan, a second sooner on a cold start; what ``blockstitch check``
    does by default). Plugin and user blocks run on meta either way.

    >>> plan("resnet50", (3, 1024, 1024), batch=64).output_shapes()
    [(64, 1000)]
    """
    return make_plan(load_spec(source), input_shape, batch, observe, verify)


def build(source: Source | Plan, input_shape: Sequence[int] | None = None, device: torch.device | str | None = None,
          dtype: torch.dtype | None = None) -> nn.Module:
    """Plan, then build the real network (a ``torch.fx.GraphModule``; ``model.code`` shows its forward).

    An edit spec (`extends:`) builds its base and stitches it (see :func:`blockstitch.stitch`).

    ``device="meta"`` gives a network without storage, for shape work and profiling.

    >>> model = build("vit_b_16")
    >>> model(torch.randn(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
    """
    meta = device is not None and torch.device(device).type == "meta"
    if isinstance(source, (str, Path, dict)):
        located = _located(source)
        if is_edit(located):
            if not meta:  # limits before allocation: the stitched weights, counted on meta, must fit
                from .assemble.limits import check_fits

                params = sum(p.numel() for p in _build_edit(located, "meta").model.parameters())
                check_fits(params * 4, 0, str(device or "cpu"), f"building '{located.data.get('name')}'", located.file)
            return _build_edit(located, "meta" if meta else (str(device) if device is not None else None)).model
    the_plan = source if isinstance(source, Plan) else plan(source, input_shape)
    if not meta:  # limits before allocation: the weights must fit in free memory
        from .assemble.limits import check_fits

        itemsize = torch.empty((), dtype=dtype).element_size() if dtype is not None else 4
        check_fits(the_plan.params * itemsize, 0, str(device or "cpu"), f"building '{the_plan.name}'", the_plan.file)
    return build_module(the_plan, None if meta else device, dtype, reuse_meta=meta)
