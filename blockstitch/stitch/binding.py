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

__all__ = ["block_spec", "bind_block", "build_block", "Loc"]

Loc = tuple[Any, ...]
"""Where an edit sits among the edits given: ``("insert", 0)`` → ``insert[0]``."""


def block_spec(block: dict[str, Any], where: Loc) -> BlockSpec:
    """The registered spec of a block mapping (``{"kind": "se"}``), or the adapter spec of an nn.Module class.

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
        return spec_cls.model_validate(block)
    except RegistryError as err:
        raise SpecError(str(err), path=path_text((*where, "kind"))) from None
    except ValidationError as err:
        raise pydantic_error(err, where, model=spec_cls) from None


def bind_block(spec: BlockSpec, shape: Shape, path: str, where: Loc) -> tuple[BlockSpec, Shape]:
    """``spec`` in the layout of a tensor of ``shape`` (at module ``path``) and its output shape there.

    >>> bind_block(block_spec({"kind": "se"}, ()), (1, 64, 56, 56), "layer1", ())[1]
    (1, 64, 56, 56)
    """
    at = path_text(where)
    layout = next((lay for lay in (spec.in_layouts or tuple(LAYOUTS)) if LAYOUTS[lay] == len(shape)), None)
    if layout is None:
        raise SpecError(f"cannot bind '{spec.kind}' at '{path}': it takes {' or '.join(spec.in_layouts or ())} "
                        f"but '{path}' carries {fmt_shape(shape)}", path=at,
                        expected=" or ".join(spec.in_layouts or ()), found=fmt_shape(shape),
                        hint="pick a path whose tensor has the block's layout")
    bound = spec.with_layout(layout)
    try:
        return bound, tuple(bound.out_shape([shape]))
    except ShapeError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        raise err.located(path=at) from None
    except SpecError as err:
        err.message = f"cannot bind '{spec.kind}' at '{path}': {err.message}"
        err.path = f"{at}.block.{err.path}" if err.path else at
        raise err.located() from None


def build_block(spec: BlockSpec, shape: Shape, like: torch.Tensor | None) -> nn.Module:
    """Build a bound block for input ``shape`` on the device and (floating) dtype of ``like``, a parameter of the
    network it joins (CPU and the default dtype for a network without parameters).

    >>> build_block(spec, (1, 64, 56, 56), next(model.parameters()))
    """
    device = like.device if like is not None else torch.device("cpu")
    try:
        with device:
            module = spec.build([shape])
    except Exception:  # noqa: BLE001 — paper code that cannot be built on meta (CPU tensors, `.to(device)`)
        if device.type != "meta":
            raise
        module = spec.build([shape]).to("meta")  # built for real on the CPU, then its weights made stand-ins
    return module.to(dtype=like.dtype) if like is not None and like.dtype.is_floating_point else module
