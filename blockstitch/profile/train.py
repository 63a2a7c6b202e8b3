"""Training FLOPs, counted: one step's forward and backward on meta tensors with the one counter
(:class:`~blockstitch.counting.OpCounter`, torch's formulas, SDPA included), and the optimizer step's
elementwise work counted apart (AdamW on meta parameters: one FLOP per element of each op, an estimate).

Backward costs about twice the forward for every matmul and convolution: once for the weights' gradient, once
for the input's — except where the input needs no gradient (the network's first layer), so a plain network's
training FLOPs are 3 × forward − its first layer's forward (ResNet-50 at 224²: 24.30 GFLOPs, not 3 × 8.18).

>>> forward_backward, optimizer = train_counts(model, (3, 224, 224), batch=1)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..counting import OpCounter
from ..meta import meta_call

__all__ = ["train_counts", "forward_backward_flops", "optimizer_step_flops"]


def forward_backward_flops(module: nn.Module, shape: Sequence[int], batch: int) -> int:
    """FLOPs of one training forward (train mode) and its backward from a scalar loss, on meta tensors: the
    weights' gradients, and each activation's where something before it needs one (the input needs none).

    >>> forward_backward_flops(nn.Linear(8, 4), (8,), batch=2)   # forward 2·2·8·4, weight grad the same
    256
    """
    with OpCounter() as counter:
        out = meta_call(module, [torch.empty(batch, *shape, device="meta")], train=True, grad=True)
        out = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(out, dict):
            out = next(iter(out.values()))
        if out.requires_grad:
            out.float().mean().backward()  # the loss itself: a reduction, no FLOPs counted
    return counter.total_flops


def optimizer_step_flops(module: nn.Module) -> int:
    """Elementwise work of one AdamW step over ``module``'s trainable parameters, counted on meta stand-ins
    (one FLOP per element of each op it runs: weight decay, both moments, the square root, the update — 8 per
    parameter for torch's AdamW, and 1 per tensor for its step count); an estimate, labelled as one wherever it
    is shown.

    >>> optimizer_step_flops(nn.Linear(8, 4))   # 36 parameters × 8, 2 step counts
    290
    """
    params = [nn.Parameter(torch.empty(p.shape, device="meta")) for p in module.parameters() if p.requires_grad]
    if not params:
        return 0
    for p in params:
        p.grad = torch.empty_like(p)
    opt = torch.optim.AdamW(params, lr=1e-3, foreach=False)
    with OpCounter() as counter:
        opt.step()
    return sum(counter.estimate.values())


def train_counts(module: nn.Module, shape: Sequence[int], batch: int) -> tuple[int, int]:
    """(forward + backward FLOPs, optimizer step FLOPs estimate) of one training step of ``module``."""
    return forward_backward_flops(module, shape, batch), optimizer_step_flops(module)
