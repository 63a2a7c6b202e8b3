"""A block to stitch, bound to the shape flowing at its point: its spec from a mapping (or a module class), its
layout and output shape checked on shapes alone, then built on the network's device and dtype."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ..blockspec import LAYOUTS, BlockSpec, Shape
from ..errors import RegistryError, ShapeError, SpecError, fmt_shape, path_text, pydantic_error
from ..foreign import module_block
from ..registry import get_block
from ..required import fill_required, fit_groups, missing_required
from .wrappers import LayoutBridge

__all__ = ["block_spec", "bind_block", "bridge_for", "build_block", "Loc", "NATURAL"]

Loc = tuple[Any, ...]
"""Where an edit sits among the edits given: ``("insert", 0)`` → ``insert[0]``."""


def block_spec(block: dict[str, Any], where: Loc, shape: Shape | None = None,
               notes: list[str] | None = None) -> BlockSpec:
    """The registered spec of a block mapping (``{"kind": "se"}``), or the adapter spec of an nn.Module class.
    Given the ``shape`` where it goes, its map size fields and required fields the place or the paper decides are filled in
    (:func:`blockstitch.required.fill_required`), each named in ``notes``.

    >>> block_spec({"kind": "se"}, ("insert", 0, "block")).kind
    'se'
    """
    if "kind" not in block:
        raise SpecError("the block to stitch has no 'kind'", path=path_text(where), hint="e.g. block: {kind: cbam}")
    kind = block["kind"]
    spec_cls: type[BlockSpec]
    try:
        if isinstance(kind, type):  # a user's nn.Module class, given from Python
            spec_cls = module_block(kind)
            return spec_cls.model_validate({**block, "kind": spec_cls.model_fields["kind"].default})
        spec_cls = get_block(str(kind))
        given = dict(block)
        found: list[str] = []
        channels = channels_of(shape) if shape is not None else None
        if channels is not None and missing_required(spec_cls, given):  # a width, a paper default: bound here
            given, found = fill_required(spec_cls, given, channels)
        if shape is not None and len(shape) == 4:
            for name in spec_cls.map_size_fields:  # weights built for the map: the map where it goes
                if name not in given:
                    given[name] = [int(shape[2]), int(shape[3])]
                    found.append(f"{name} = {shape[2]}×{shape[3]} (the map where it goes)")
        spec = spec_cls.model_validate(given)
        if channels is not None:  # a default group count that does not divide the channels: the largest that does
            spec, fitted = fit_groups(spec, channels)
            found += fitted
        pad = getattr(spec_cls, "pad_field", None)
        multiple = getattr(spec, "size_multiple", lambda: 1)()
        if pad and pad not in given and shape is not None and len(shape) == 4 and (shape[2] % multiple
                                                                                   or shape[3] % multiple):
            spec = spec.model_copy(update={pad: True})  # the paper's own padding, where the map does not tile
            found.append(f"{pad} = true ({shape[2]}×{shape[3]} padded to multiples of {multiple}, as the paper's "
                         "code does)")
        if notes is not None:
            notes += found
        return spec
    except RegistryError as err:
        raise SpecError(str(err), path=path_text((*where, "kind"))) from None
    except ValidationError as err:
        raise pydantic_error(err, where, model=spec_cls) from None


NATURAL = {4: "b c h w", 3: "b n c", 2: "b c"}
"""The layout a tensor of a network that is not ours is taken to have, by rank (PyTorch's convention)."""
BRIDGED = ("b n c", "b h w c")
"""Layouts a block may take on a ``b c h w`` feature map through a :class:`~.wrappers.LayoutBridge`."""


def channels_of(shape: Shape) -> int | None:
    """The channel count of a tensor of a network that is not ours (``b c h w``, ``b n c``, ``b c``)."""
    layout = NATURAL.get(len(shape))
    return int(shape[layout.split().index("c")]) if layout else None


def bridge_for(spec: BlockSpec, shape: Shape) -> str | None:
    """The layout a block runs in on a feature map of ``shape`` through a bridge, or None when it takes the
    tensor as it is (a ``b n c`` block on ``b c h w``: ``"b n c"``).

    >>> bridge_for(block_spec({"kind": "mhsa"}, ()), (1, 64, 8, 8))
    'b n c'
    """
    if spec.in_layouts is None or len(shape) != 4 or "b c h w" in spec.in_layouts:
        return None
    return next((lay for lay in BRIDGED if lay in spec.in_layouts), None)


def _inner(shape: Shape, layout: str) -> Shape:
    b, c, h, w = shape
    return (b, h * w, c) if layout == "b n c" else (b, h, w, c)


def _outer(out: Shape, shape: Shape, layout: str) -> Shape | None:
    b, _, h, w = shape
    if layout == "b n c":
        return (out[0], out[2], h, w) if len(out) == 3 and out[1] == h * w else None
    return (out[0], out[3], out[1], out[2]) if len(out) == 4 else None


def bind_block(spec: BlockSpec, shape: Shape, path: str, where: Loc) -> tuple[BlockSpec, Shape]:
    """``spec`` in the layout of a tensor of ``shape`` (at module ``path``) and its output shape there; a block
    that takes tokens (``b n c``) or channels-last input runs on a feature map through a bridge
    (:func:`bridge_for`).

    >>> bind_block(block_spec({"kind": "se"}, ()), (1, 64, 56, 56), "layer1", ())[1]
    (1, 64, 56, 56)
    >>> bind_block(block_spec({"kind": "mhsa"}, ()), (1, 64, 8, 8), "layer2", ())[1]   # b (h w) c inside
    (1, 64, 8, 8)
    """
    at = path_text(where)
    bridge = bridge_for(spec, shape)
    inner = _inner(shape, bridge) if bridge else shape
    natural = NATURAL.get(len(shape))
    accepted = spec.in_layouts or tuple(LAYOUTS)
    layout = bridge or (natural if natural in accepted else
                        next((lay for lay in accepted if LAYOUTS[lay] == len(shape)), None))
    if layout is None:
        raise SpecError(f"cannot bind '{spec.kind}' at '{path}': it takes {' or '.join(spec.in_layouts or ())} "
                        f"but '{path}' carries {fmt_shape(shape)}", path=at,
                        expected=" or ".join(spec.in_layouts or ()), found=fmt_shape(shape),
                        hint="pick a path whose tensor has the block's layout")
    if spec.arity is not None and spec.arity != 1:
        raise SpecError(f"cannot bind '{spec.kind}' at '{path}': it takes {spec.arity} inputs, and a stitched block "
                        "takes the one tensor flowing there", path=at, hint="stitch a single-input block")
    bound = spec.with_layout(layout)
    try:
        out = tuple(bound.out_shape([inner]))
    except ShapeError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        raise err.located(path=at) from None
    except SpecError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        err.path = f"{at}.block.{err.path}" if err.path else at
        raise err.located() from None
    if bridge is None:
        return bound, out
    back = _outer(out, shape, bridge)
    if back is None:
        raise ShapeError(f"cannot bind '{spec.kind}' at '{path}': bridged to {bridge} it gives {fmt_shape(out)}, "
                         f"which does not map back onto the {fmt_shape(shape)} feature map", path=at)
    return bound, back


def build_block(spec: BlockSpec, shape: Shape, like: torch.Tensor | None) -> nn.Module:
    """Build a bound block for input ``shape`` on the device and (floating) dtype of ``like``, a parameter of the
    network it joins (CPU and the default dtype for a network without parameters); a bridged block comes
    wrapped in its :class:`~.wrappers.LayoutBridge`.

    >>> build_block(spec, (1, 64, 56, 56), next(model.parameters()))
    """
    bridge = bridge_for(spec, shape)
    inner = _inner(shape, bridge) if bridge else shape
    device = like.device if like is not None else torch.device("cpu")
    try:
        with device:
            module = spec.build([inner])
    except Exception:  # noqa: BLE001 — paper code that cannot be built on meta (CPU tensors, `.to(device)`)
        if device.type != "meta":
            raise
        module = spec.build([inner]).to("meta")  # built for real on the CPU, then its weights made stand-ins
    if bridge:
        module = LayoutBridge(module, bridge)
    return module.to(dtype=like.dtype) if like is not None and like.dtype.is_floating_point else module
