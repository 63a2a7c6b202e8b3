"""Running a module that holds real weights on meta tensors, without touching or copying those weights.

``torch.func.functional_call`` swaps in meta stand-ins of the same shapes for the call only, so profiling,
checking and stitching a pretrained network allocates nothing and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["stand_ins", "meta_call", "natural_input"]


def stand_ins(module: nn.Module, grad: bool = False) -> dict[str, torch.Tensor]:
    """Meta tensors shaped like every parameter and buffer (tied weights included); with ``grad``, the
    trainable ones require a gradient, so a backward pass can be counted too."""
    tensors = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers())
    made: dict[int, torch.Tensor] = {}  # a tied tensor (one object, several names) gets one stand-in
    for _, t in tensors:
        if id(t) not in made:
            made[id(t)] = torch.empty_like(t, device="meta").requires_grad_(
                grad and t.is_floating_point() and t.requires_grad)
    return {name: made[id(t)] for name, t in tensors}


def meta_call(module: nn.Module, inputs: Sequence[torch.Tensor], train: bool = False, grad: bool = False) -> Any:
    """``module(*inputs)`` with meta stand-ins, in train or eval mode (restored afterwards); without ``grad``
    under ``no_grad``."""
    was = module.training
    module.train(train)
    try:
        with torch.set_grad_enabled(grad):
            return functional_call(module, stand_ins(module, grad), tuple(inputs), tie_weights=True)
    finally:
        module.train(was)


def natural_input(module: nn.Module) -> tuple[int, ...] | None:
    """The input a module was made for, without the batch: a blockstitch network's planned input, else a timm
    model's ``pretrained_cfg["input_size"]``; None when the module does not say."""
    meta = getattr(module, "meta", None)
    plan = meta.get("blockstitch_plan") if isinstance(meta, dict) else None
    if plan is not None:
        return tuple(plan.input.shape[1:])
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    return tuple(size) if size else None
