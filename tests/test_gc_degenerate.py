"""gc_block with a one-channel bottleneck (16 channels, reduction 16) is structurally dead — its LayerNorm over one
value is constant — and check-module says so; at reduction 4 it is alive. Truth: plain PyTorch backward passes."""

from __future__ import annotations

import torch

import blockstitch as bs
from blockstitch.blocks.library.attention_nonlocal import GlobalContext


def _dead_by_hand(hidden: int) -> set[str]:
    torch.manual_seed(0)
    module = GlobalContext(16, hidden)
    with torch.no_grad():
        module.transform[3].weight.normal_()  # not the identity start: every path open
    module(torch.randn(2, 16, 8, 8)).square().sum().backward()
    return {n for n, p in module.named_parameters() if p.grad is None or not p.grad.any()}


def test_one_channel_bottleneck_is_dead_and_check_module_says_so() -> None:
    assert {"mask.weight", "transform.0.weight"} <= _dead_by_hand(1)
    assert not _dead_by_hand(4)  # (the mask conv has no bias: a bias before a softmax never gets a gradient)
    dead = bs.check_module("gc_block", input="b c h w", axes={"c": 16}, args={"reduction": 16}, compile=False,
                           export=False, seconds=60)
    assert any(c.name == "gradients" and c.status == "failed" and "mask.weight" in c.message for c in dead.checks)
    alive = bs.check_module("gc_block", input="b c h w", axes={"c": 16}, args={"reduction": 4}, compile=False,
                            export=False, seconds=60)
    assert all(c.status != "failed" for c in alive.checks if c.name == "gradients")
