"""Networks from sources: a spec (file, zoo name, dict) loaded, planned on meta tensors, built — or, for an edit
spec, its base built and stitched. The API's face (:mod:`blockstitch.api` re-exports it) over the Subject: each
source is resolved once, by :func:`blockstitch.subject.subject`, and its located data handed on.

>>> plan("resnet50").params
25557032
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from torch import nn

from .assemble import Network, Plan, build_within_limits, make_plan, resolve
from .assemble.planner import StepContext
from .errors import SpecError

if TYPE_CHECKING:
    from .subject import Subject

__all__ = ["Source", "load_spec", "plan", "build", "is_edit_source"]

Source = Union[str, Path, dict[str, Any], Network]
"""A spec file path, a zoo name (`resnet50`), a spec as a dict, or an already loaded :class:`Network`."""


def _spec(source: str | Path | dict[str, Any] | Subject) -> Subject:
    from .subject import subject  # the one way in: names are looked up, never imported

    return subject(source, accept={"spec", "edit"})


def is_edit_source(source: object) -> bool:
    """True when ``source`` is a spec that edits another network (`extends:`)."""
    return isinstance(source, (str, Path, dict)) and _spec(source).what == "edit"


def load_spec(source: Source) -> Network:
    """Load and validate a spec into a :class:`Network` (nodes resolved, not yet shape-checked).

    >>> net = load_spec("unet")
    >>> net.nodes[0].id
    'inc'
    """
    if isinstance(source, Network):
        return source
    if isinstance(source, (str, Path, dict)):
        found = _spec(source)
        data = found.located.data  # type: ignore[union-attr]  # set for specs
        if found.what == "edit":
            raise SpecError(f"'{data.get('name', source)}' edits '{data['extends']}': it has no plan of its own",
                            file=found.origin,
                            hint="`blockstitch check` shows what it changes; blockstitch.build / stitch build it")
        return resolve(found.located)  # type: ignore[arg-type]
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
    if isinstance(source, (str, Path, dict)):
        found = _spec(source)
        if found.what == "edit":  # its base built and stitched (real weights: checked first that they fit)
            meta = device is not None and torch.device(device).type == "meta"
            return found.module("meta" if meta else (str(device) if device is not None else None))
        source = resolve(found.located)  # type: ignore[arg-type]  # the file read once, planned below
    the_plan = source if isinstance(source, Plan) else plan(source, input_shape)
    return build_within_limits(the_plan, device, dtype)
